"""Support & self-service tools (issue 12) through csmcpd over MCP, on hand-computed fixtures:
SLA states at every boundary of every priority (rows back-dated in the fixture, no sleeps), every
ticket transition allowed and refused, the escalation chain, team routing, the outbox delivery
to Zendesk, auto routing of 12 tickets over 6 agents with the assignment worked out by hand,
rebalance moves, KB full-text ranking, exact performance figures, 8 concurrent `route_tickets
auto` runs over 200 tickets, validation errors, not-found and scope refusals."""
import threading

import data_util as du
import lib
import sec_util as su

SLA = {"P0": (5, 60), "P1": (15, 240), "P2": (60, 1440), "P3": (240, 2880), "P4": (480, 4320)}
NO_LIMITS = {"ratelimit": {"enabled": False}}


def q(s):
    return "'" + s.replace("'", "''") + "'"


class SupportBase(lib.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.url = lib.database_url()
        cls.p = du.prefix()
        cls.sql("INSERT INTO accounts (client_id, client_name, company_name) VALUES %s" % ", ".join(
            "(%s, 'Support %s', 'Support %s Inc')" % (q(cls.cid(k)), k, k)
            for k in ("a", "b", "sla", "perf", "nov", "wf")))
        cls.d = lib.Csmcpd(workers=2, conf=NO_LIMITS).start()
        cls.s = cls.d.session()
        cls.schemas = {t["name"]: t.get("outputSchema") for t in cls.s.list_tools()}

    @classmethod
    def tearDownClass(cls):
        cls.s.close()
        cls.d.stop()

    @classmethod
    def cid(cls, k):
        return "%s_%s" % (cls.p, k)

    @classmethod
    def sql(cls, text):
        return du.psql(cls.url, text)

    def call(self, name, args):
        out = self.s.call_ok(name, args)
        errs = du.schema_errors(self.schemas[name], out)
        self.assertEqual(errs, [], "%s output does not match its outputSchema" % name)
        self.assertIsInstance(out.get("summary"), str)
        return out

    def fail_text(self, name, args):
        r = self.s.call_tool(name, args)
        self.assertTrue(r.get("isError"), "%s(%s) should fail: %s" % (name, args, r))
        return r["content"][0]["text"]

    def invalid_params(self, name, args, field):
        """A schema violation: on the session's protocol revision (2025-11-25) a tool error
        naming the argument path (a -32602 JSON-RPC error on earlier revisions)."""
        try:
            r = self.s.call_tool(name, args)
        except lib.McpError as e:
            self.assertEqual(e.code, -32602, e.message)
            self.assertIn(field, e.message)
            return e.message
        self.assertTrue(r.get("isError"), "%s(%s) should be refused by the schema" % (name, args))
        self.assertIn("arguments", r["content"][0]["text"])
        self.assertIn(field, r["content"][0]["text"])
        return r["content"][0]["text"]

    def ticket(self, args):
        return self.call("handle_support_ticket", args)

    def new_ticket(self, client="a", **kw):
        args = {"action": "create", "client_id": self.cid(client), "subject": "Cannot log in",
                "description": "SSO fails since this morning", "requester_email": "jo@cust.example.com",
                "requester_name": "Jo Customer"}
        args.update(kw)
        return self.ticket(args)

    def insert_ticket(self, client, priority, created_ago, category="technical_issue", **cols):
        """A ticket row written directly (fixture): created `created_ago` (SQL interval text)
        before now; cols are extra column = SQL expression pairs. Returns its id."""
        fr, rs = SLA[priority]
        names = ["ticket_id", "client_id", "subject", "description", "priority", "category",
                 "requester_email", "requester_name", "sla_first_response_minutes",
                 "sla_resolution_minutes", "created_at"]
        vals = ["'TKT-' || nextval('support_ticket_seq')", q(self.cid(client)), "'fixture'",
                "'fixture ticket'", q(priority), q(category), "'fx@cust.example.com'", "'Fx'",
                str(fr), str(rs), "now() - interval %s" % q(created_ago)]
        for k, v in cols.items():
            names.append(k)
            vals.append(v)
        return self.sql("INSERT INTO support_tickets (%s) VALUES (%s) RETURNING ticket_id" %
                        (", ".join(names), ", ".join(vals)))


class TicketLifecycle(SupportBase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.agent = cls.p + "_ag"
        cls.sql("INSERT INTO support_agents (agent_id, name, email, team, max_tickets) VALUES "
                "(%s, 'Ada Agent', %s, 'Technical Support', 5)" %
                (q(cls.agent), q(cls.p + ".ada@support.example.com")))

    def test_create_targets_routing_and_records(self):
        out = self.new_ticket(priority="P2", tags=["SSO", "login", "sso"])
        tid = out["ticket_id"]
        self.assertRegex(tid, r"^TKT-[0-9]+$")
        self.assertEqual(out["sla_targets"], {"priority": "P2", "first_response_minutes": 60,
                                              "resolution_minutes": 1440})
        self.assertEqual(out["routing"]["assigned_team"], "Technical Support")
        self.assertIsNone(out["routing"]["assigned_agent"])
        t = out["ticket"]
        self.assertEqual((t["status"], t["priority"], t["tags"]), ("open", "P2", ["login", "sso"]))
        self.assertEqual(t["sla"]["state"], "on_track")
        self.assertTrue(t["sla"]["first_response"]["running"])
        self.assertEqual(out["zendesk"], {"state": "not_configured", "channel": "zendesk"})
        self.assertEqual(self.sql("SELECT count(*) FROM ticket_comments WHERE ticket_id = %s AND "
                                  "author_type = 'system' AND content LIKE 'Ticket created: priority P2%%'"
                                  % q(tid)), "1")
        self.assertEqual(self.sql("SELECT count(*) FROM activity_log WHERE entity_id = %s AND "
                                  "action = 'create_ticket' AND old_values IS NULL AND "
                                  "new_values->>'priority' = 'P2'" % q(tid)), "1")
        self.assertEqual(self.sql("SELECT count(*) FROM outbox WHERE ref = %s" % q(tid)), "0")
        got = self.ticket({"action": "get", "ticket_id": tid})
        self.assertEqual(got["ticket"]["ticket_id"], tid)
        self.assertEqual(len(got["comments"]), 1)

    def test_team_routing_by_priority_and_category(self):
        teams = {"technical_issue": "Technical Support", "bug_report": "Engineering Support",
                 "feature_request": "Product Support", "how_to_question": "Customer Success",
                 "account_billing": "Billing Support", "integration_support": "Integration Team",
                 "training_request": "Training Team", "data_issue": "Data Support",
                 "performance": "Technical Support", "other": "General Support"}
        for cat, team in teams.items():
            out = self.new_ticket(category=cat, priority="P3")
            self.assertEqual(out["routing"]["assigned_team"], team, cat)
        for pr in ("P0", "P1"):
            out = self.new_ticket(category="account_billing", priority=pr)
            self.assertEqual(out["routing"]["assigned_team"], "Escalation Team", pr)
            self.assertEqual(out["sla_targets"]["first_response_minutes"], SLA[pr][0])
        out = self.new_ticket()
        self.assertEqual(out["ticket"]["priority"], "P3")
        self.assertEqual(out["ticket"]["category"], "technical_issue")

    def test_transitions_allowed_and_refused(self):
        tid = self.new_ticket(priority="P3")["ticket_id"]
        # from open
        self.assertIn("it is open; only a resolved ticket can be closed",
                      self.fail_text("handle_support_ticket", {"action": "close", "ticket_id": tid}))
        self.assertIn("it is open; a ticket can be rated once it is resolved or closed",
                      self.fail_text("handle_support_ticket", {"action": "rate", "ticket_id": tid,
                                                               "satisfaction_rating": 4}))
        self.assertIn("only a resolved or closed ticket can be reopened",
                      self.fail_text("handle_support_ticket", {"action": "reopen", "ticket_id": tid}))
        self.assertIn("use action resolve", self.fail_text("handle_support_ticket", {
            "action": "update", "ticket_id": tid, "status": "resolved"}))
        self.assertIn("use action close", self.fail_text("handle_support_ticket", {
            "action": "update", "ticket_id": tid, "status": "closed"}))
        self.assertIn("nothing to change", self.fail_text("handle_support_ticket", {
            "action": "update", "ticket_id": tid}))
        # open -> in_progress records the first response
        out = self.ticket({"action": "update", "ticket_id": tid, "status": "in_progress"})
        self.assertEqual(out["ticket"]["status"], "in_progress")
        self.assertIsNotNone(out["ticket"]["first_response_at"])
        self.assertIn("first response recorded (status change out of open)", out["changes"])
        self.assertIn("back to open", self.fail_text("handle_support_ticket", {
            "action": "update", "ticket_id": tid, "status": "open"}))
        self.assertIn("already has these values", self.fail_text("handle_support_ticket", {
            "action": "update", "ticket_id": tid, "status": "in_progress", "priority": "P3"}))
        for st in ("waiting_on_customer", "waiting_on_engineering", "in_progress"):
            self.assertEqual(self.ticket({"action": "update", "ticket_id": tid, "status": st})
                             ["ticket"]["status"], st)
        self.assertIn("resolution_notes is required", self.fail_text("handle_support_ticket", {
            "action": "resolve", "ticket_id": tid}))
        out = self.ticket({"action": "resolve", "ticket_id": tid, "resolution_notes": "Cache cleared"})
        self.assertEqual(out["ticket"]["status"], "resolved")
        self.assertEqual(out["resolution"]["resolution_sla"], "met")
        # from resolved
        for act, extra in (("update", {"priority": "P1"}), ("escalate", {"escalation_reason": "x"}),
                           ("resolve", {"resolution_notes": "again"})):
            msg = self.fail_text("handle_support_ticket", dict(action=act, ticket_id=tid, **extra))
            self.assertIn("it is resolved; allowed from resolved: close, reopen, rate, add_comment, get", msg)
        self.ticket({"action": "add_comment", "ticket_id": tid, "author_type": "customer",
                     "customer_visible_notes": "Thanks!"})
        out = self.ticket({"action": "rate", "ticket_id": tid, "satisfaction_rating": 4,
                           "satisfaction_comment": "quick"})
        self.assertEqual(out["satisfaction"]["rating"], 4)
        out = self.ticket({"action": "close", "ticket_id": tid})
        self.assertEqual(out["ticket"]["status"], "closed")
        # from closed
        self.assertIn("it is closed; only a resolved ticket can be closed",
                      self.fail_text("handle_support_ticket", {"action": "close", "ticket_id": tid}))
        for act, extra in (("update", {"status": "in_progress"}), ("add_comment", {"internal_notes": "x"}),
                           ("escalate", {"escalation_reason": "x"})):
            msg = self.fail_text("handle_support_ticket", dict(action=act, ticket_id=tid, **extra))
            self.assertIn("it is closed; allowed from closed: reopen, rate, get", msg)
        out = self.ticket({"action": "rate", "ticket_id": tid, "satisfaction_rating": 5})
        self.assertEqual(out["satisfaction"]["previous_rating"], 4)
        out = self.ticket({"action": "reopen", "ticket_id": tid})
        t = out["ticket"]
        self.assertEqual((t["status"], t["resolved_at"], t["closed_at"]), ("reopened", None, None))
        self.assertTrue(t["sla"]["resolution"]["running"])
        self.ticket({"action": "update", "ticket_id": tid, "status": "in_progress"})
        self.ticket({"action": "resolve", "ticket_id": tid, "resolution_notes": "Fixed for good"})
        self.assertEqual(self.ticket({"action": "reopen", "ticket_id": tid})["ticket"]["status"], "reopened")
        # every action wrote one system comment and one activity entry
        n_actions = 14
        self.assertEqual(self.sql("SELECT count(*) FROM ticket_comments WHERE ticket_id = %s AND "
                                  "author_type = 'system'" % q(tid)), str(n_actions))
        self.assertEqual(self.sql("SELECT count(*) FROM activity_log WHERE entity = 'support_ticket' "
                                  "AND entity_id = %s" % q(tid)), str(n_actions))

    def test_first_response_only_from_public_agent_comment(self):
        tid = self.new_ticket(priority="P2")["ticket_id"]
        self.assertIn("has no assigned agent", self.fail_text("handle_support_ticket", {
            "action": "add_comment", "ticket_id": tid, "customer_visible_notes": "Hello"}))
        self.ticket({"action": "update", "ticket_id": tid, "assigned_agent": self.agent})
        out = self.ticket({"action": "add_comment", "ticket_id": tid, "internal_notes": "checking logs"})
        self.assertIsNone(out["ticket"]["first_response_at"])
        out = self.ticket({"action": "add_comment", "ticket_id": tid, "author_type": "customer",
                           "customer_visible_notes": "Any news?"})
        self.assertIsNone(out["ticket"]["first_response_at"])
        self.assertIn("a customer comment is always public", self.fail_text("handle_support_ticket", {
            "action": "add_comment", "ticket_id": tid, "author_type": "customer", "internal_notes": "x"}))
        out = self.ticket({"action": "add_comment", "ticket_id": tid, "customer_visible_notes": "On it"})
        self.assertIsNotNone(out["ticket"]["first_response_at"])
        self.assertTrue(out["comment"]["first_response"])
        self.assertEqual(out["comment"]["author_name"], "Ada Agent")
        self.assertEqual(out["ticket"]["sla"]["first_response"]["state"], "met")
        self.assertFalse(out["ticket"]["sla"]["first_response"]["running"])

    def test_escalation_chain(self):
        tid = self.new_ticket(priority="P4", category="how_to_question")["ticket_id"]
        chain = [("P4", "P3"), ("P3", "P2"), ("P2", "P1"), ("P1", "P1")]
        for before, after in chain:
            out = self.ticket({"action": "escalate", "ticket_id": tid, "escalation_reason": "VIP " + before})
            self.assertEqual((out["escalation"]["from_priority"], out["escalation"]["to_priority"]),
                             (before, after))
            t = out["ticket"]
            self.assertEqual((t["priority"], t["assigned_team"], t["escalated"]), (after, "Escalation Team", True))
            self.assertEqual(t["sla"]["first_response"]["target_minutes"], SLA[after][0])
            self.assertEqual(t["sla"]["resolution"]["target_minutes"], SLA[after][1])
            self.assertEqual(t["escalation_reason"], "VIP " + before)
        self.assertEqual(self.sql("SELECT count(*) FROM ticket_comments WHERE ticket_id = %s AND content "
                                  "LIKE '%%SLA re-targeted%%'" % q(tid)), "3")
        tid = self.new_ticket(priority="P0")["ticket_id"]
        out = self.ticket({"action": "escalate", "ticket_id": tid, "escalation_reason": "outage"})
        self.assertEqual(out["ticket"]["priority"], "P0")
        self.assertIn("escalation_reason is required", self.fail_text("handle_support_ticket", {
            "action": "escalate", "ticket_id": tid}))

    def test_priority_update_retargets(self):
        tid = self.new_ticket(priority="P3", category="bug_report")["ticket_id"]
        out = self.ticket({"action": "update", "ticket_id": tid, "priority": "P1"})
        t = out["ticket"]
        self.assertEqual((t["sla"]["first_response"]["target_minutes"], t["sla"]["resolution"]["target_minutes"]), (15, 240))
        self.assertEqual(t["assigned_team"], "Escalation Team")
        self.assertIn("priority P3 -> P1; SLA re-targeted: first response 240 -> 15 min, resolution 2880 -> 240 min",
                      out["changes"])

    def test_assignment_respects_agent_capacity(self):
        ag = self.p + "_cap"
        self.sql("INSERT INTO support_agents (agent_id, name, email, team, max_tickets) VALUES "
                 "(%s, 'Cap Agent', %s, 'Technical Support', 1)" % (q(ag), q(self.p + ".cap@support.example.com")))
        self.new_ticket(assigned_agent=ag)
        msg = self.fail_text("handle_support_ticket", dict(action="create", client_id=self.cid("a"), subject="s",
                             description="d", requester_email="a@b.example.com", requester_name="n", assigned_agent=ag))
        self.assertIn("is at capacity (1 open tickets of 1)", msg)
        self.assertIn("support agent nobody_here not found", self.fail_text("handle_support_ticket", {
            "action": "update", "ticket_id": self.new_ticket()["ticket_id"], "assigned_agent": "nobody_here"}))

    def test_list_filters_and_pagination(self):
        c = "b"
        ids = [self.new_ticket(client=c, priority=p)["ticket_id"] for p in ("P1", "P2", "P2", "P3")]
        out = self.ticket({"action": "list", "client_id": self.cid(c), "limit": 3})
        self.assertEqual(out["pagination"], {"total": 4, "limit": 3, "offset": 0, "has_more": True})
        self.assertEqual([t["ticket_id"] for t in out["tickets"]], ids[::-1][:3])
        out = self.ticket({"action": "list", "client_id": self.cid(c), "priority": "P2"})
        self.assertEqual(sorted(t["ticket_id"] for t in out["tickets"]), sorted(ids[1:3]))
        out = self.ticket({"action": "list", "client_id": self.cid(c), "team": "Escalation Team"})
        self.assertEqual([t["ticket_id"] for t in out["tickets"]], [ids[0]])
        out = self.ticket({"action": "list", "client_id": self.cid(c), "sla_state": "breached"})
        self.assertEqual(out["tickets"], [])

    def test_zendesk_delivery_through_the_outbox(self):
        self.sql("INSERT INTO integrations (channel, enabled, settings) VALUES ('zendesk', true, "
                 "'{\"subdomain\": \"acme\"}') ON CONFLICT (channel) DO UPDATE SET enabled = true")
        try:
            out = self.new_ticket(priority="P1", tags=["vip"])
            tid = out["ticket_id"]
            self.assertEqual(out["zendesk"]["state"], "queued")
            row = du.psql_json(self.url, "SELECT row_to_json(o) FROM outbox o WHERE id = %d" % out["zendesk"]["outbox_id"])
            self.assertEqual((row["channel"], row["state"], row["source_tool"], row["client_id"], row["ref"]),
                             ("zendesk", "queued", "handle_support_ticket", self.cid("a"), tid))
            self.assertEqual(row["idempotency_key"], "zendesk:create:" + tid)
            self.assertEqual(row["payload"]["ticket"]["priority"], "high")
            self.assertEqual(row["payload"]["ticket"]["tags"], ["vip"])
            out = self.ticket({"action": "add_comment", "ticket_id": tid, "author_email": "ops@support.example.com",
                               "customer_visible_notes": "Working on it"})
            self.assertEqual(out["zendesk"]["state"], "queued")
            self.assertEqual(du.psql_json(self.url, "SELECT payload->'comment' FROM outbox WHERE id = %d" %
                                          out["zendesk"]["outbox_id"]), {"body": "Working on it", "public": True})
            # the request the monitor's delivery makes of it (db/functions/outbox/delivery.sql)
            req = du.psql_json(self.url, "SELECT row_to_json(r) FROM outbox o, csmcp.outbox_request(o.channel, o.payload) r "
                                         "WHERE o.id = %d" % out["zendesk"]["outbox_id"])
            self.assertEqual((req["method"], req["path"]), ("PUT", "/api/v2/tickets/update_many.json?external_ids=" + tid))
            self.assertEqual(req["body"]["ticket"]["comment"], {"body": "Working on it", "public": True})
            self.assertEqual(req["body"]["ticket"]["status"], "open")
            out = self.ticket({"action": "add_comment", "ticket_id": tid, "author_email": "ops@support.example.com",
                               "customer_visible_notes": "Update", "internal_notes": "Note"})
            self.assertEqual((out["zendesk"]["state"], len(out["zendesk"]["outbox_ids"])), ("queued", 2))
            out = self.ticket({"action": "update", "ticket_id": tid, "status": "waiting_on_customer"})
            self.assertEqual(out["zendesk"]["state"], "queued")
            self.assertEqual(du.psql_json(self.url, "SELECT payload#>'{ticket,status}' FROM outbox WHERE id = %d" %
                                          out["zendesk"]["outbox_id"]), "pending")
            # resolve is not a Zendesk operation
            self.assertNotIn("zendesk", self.ticket({"action": "resolve", "ticket_id": tid, "resolution_notes": "ok"}))
            self.assertEqual(self.sql("SELECT count(*) FROM outbox WHERE ref = %s" % q(tid)), "5")
        finally:
            self.sql("DELETE FROM integrations WHERE channel = 'zendesk'")
        out = self.new_ticket()
        self.assertEqual(out["zendesk"]["state"], "not_configured")

    def test_validation_and_not_found(self):
        base = {"action": "create", "client_id": self.cid("a"), "subject": "s", "description": "d",
                "requester_email": "a@b.example.com", "requester_name": "n"}
        self.invalid_params("handle_support_ticket", dict(base, priority="P9"), "priority")
        self.invalid_params("handle_support_ticket", dict(base, requester_email="not-an-email"), "requester_email")
        self.invalid_params("handle_support_ticket", dict(base, unknown_field=1), "unknown_field")
        self.invalid_params("handle_support_ticket", {"action": "get", "ticket_id": "TKT-abc"}, "ticket_id")
        self.invalid_params("handle_support_ticket", {"action": "rate", "ticket_id": "TKT-1", "satisfaction_rating": 6},
                            "satisfaction_rating")
        self.invalid_params("handle_support_ticket", {"action": "fly"}, "action")
        self.assertIn("subject is required", self.fail_text("handle_support_ticket", {
            k: v for k, v in base.items() if k != "subject"}))
        self.assertEqual(self.fail_text("handle_support_ticket", {"action": "get", "ticket_id": "TKT-999999999999"}),
                         "ticket TKT-999999999999 not found")
        self.assertIn("client not found: %s_none" % self.p, self.fail_text("handle_support_ticket", dict(
            base, client_id=self.p + "_none")))


class SlaBoundaries(SupportBase):
    """Back-dated rows: running clocks just below and above 0.8 x target and the target (10 s
    below, 1 s above; a call cannot take 10 s), stopped clocks exactly at and 1 s past the target."""

    def test_sla_states_at_the_boundaries_for_every_priority(self):
        rows = []  # (priority, seconds ago, first response after s, resolved after s, status, expected)
        for pr, (fr, rs) in SLA.items():
            for clock, target in (("first_response", fr), ("resolution", rs)):
                t = target * 60
                cases = [(0.8 * t - 10, None, "on_track"), (0.8 * t + 1, None, "at_risk"),
                         (t - 10, None, "at_risk"), (t + 1, None, "breached"),
                         (t + 3600, t, "met"), (t + 3600, t + 1, "breached")]
                for ago, stop, state in cases:
                    if clock == "first_response":
                        rows.append((pr, ago, stop, None, "open" if stop is None else "in_progress", (pr, clock, state)))
                    else:  # answered after 1 s: only the resolution clock is under test
                        rows.append((pr, ago, 1, stop, "in_progress" if stop is None else "resolved", (pr, clock, state)))
        # One statement: every row is back-dated from the same now(), and the tool reads them
        # right after (the 10 s margin below a boundary covers that delay).
        values = ", ".join("(%d, %s, %d, %d, %d, %s, %s, %s)" % (
            n, q(pr), SLA[pr][0], SLA[pr][1], ago, "NULL" if f is None else f, "NULL" if r is None else r, q(st))
            for n, (pr, ago, f, r, st, _) in enumerate(rows))
        out = self.sql(
            "INSERT INTO support_tickets (ticket_id, client_id, subject, description, priority, category, status, "
            "requester_email, requester_name, sla_first_response_minutes, sla_resolution_minutes, created_at, "
            "first_response_at, resolved_at) "
            "SELECT 'TKT-' || nextval('support_ticket_seq'), %s, 'sla-' || v.n, 'sla', v.pr, 'other', v.st, "
            "'s@cust.example.com', 'S', v.fr, v.rs, x.c, x.c + make_interval(secs => v.f), x.c + make_interval(secs => v.r) "
            "FROM (VALUES %s) v(n, pr, fr, rs, ago, f, r, st) "
            "CROSS JOIN LATERAL (SELECT now() - make_interval(secs => v.ago) AS c) x "
            "RETURNING subject, ticket_id" % (q(self.cid("sla")), values))
        ids = dict(line.split("|") for line in out.split("\n"))
        self.assertEqual(len(ids), len(rows))
        expect = {ids["sla-%d" % n]: row[5] for n, row in enumerate(rows)}
        got = {}
        offset = 0
        while True:
            out = self.ticket({"action": "list", "client_id": self.cid("sla"), "limit": 100, "offset": offset})
            got.update({t["ticket_id"]: t for t in out["tickets"]})
            if not out["pagination"]["has_more"]:
                break
            offset += 100
        self.assertEqual(len(got), len(expect))
        for tid, (pr, clock, state) in expect.items():
            self.assertEqual(got[tid]["sla"][clock]["state"], state, "%s %s %s" % (tid, pr, clock))
        # the ticket's state is the worse clock, and the list filter uses it
        order = ["met", "on_track", "at_risk", "breached"]
        for t in got.values():
            worst = max(t["sla"]["first_response"]["state"], t["sla"]["resolution"]["state"], key=order.index)
            self.assertEqual(t["sla"]["state"], worst, t["ticket_id"])
        breached = self.ticket({"action": "list", "client_id": self.cid("sla"), "sla_state": "breached", "limit": 100})
        self.assertEqual(sorted(t["ticket_id"] for t in breached["tickets"]),
                         sorted(t for t in got if got[t]["sla"]["state"] == "breached"))
        # stopped exactly at the target: elapsed shown as the target
        met = [t for t, (pr, c, s) in expect.items() if s == "met" and pr == "P2" and c == "first_response"][0]
        self.assertEqual(got[met]["sla"]["first_response"]["elapsed_minutes"], 60)


class Routing(SupportBase):
    def agents(self, team, rows):
        """rows: (suffix, max_tickets, expertise list, is_senior)."""
        for suffix, cap, exp, senior in rows:
            aid = "%s_%s" % (self.p, suffix)
            self.sql("INSERT INTO support_agents (agent_id, name, email, team, is_senior, max_tickets) VALUES "
                     "(%s, %s, %s, %s, %s, %d)" % (q(aid), q("Agent " + suffix), q(aid + "@support.example.com"),
                                                   q(team), "true" if senior else "false", cap))
            for c in exp:
                self.sql("INSERT INTO support_agent_expertise VALUES (%s, %s)" % (q(aid), q(c)))

    def a(self, suffix):
        return "%s_%s" % (self.p, suffix)

    def preload(self, team, agent_suffix, n, priority="P3", spacing_minutes=0):
        ids = []
        for k in range(n):
            ids.append(self.insert_ticket("a", priority, "%d minutes" % (600 - k * spacing_minutes), "other",
                                          assigned_agent=q(self.a(agent_suffix)), assigned_team=q(team),
                                          status="'in_progress'"))
        return ids

    def test_auto_routing_hand_computed(self):
        team = self.p + " Routing"
        self.agents(team, [("a1", 3, ["technical_issue"], False), ("a2", 3, ["bug_report"], False),
                           ("a3", 2, ["technical_issue", "account_billing"], False), ("a4", 4, [], False),
                           ("a5", 2, ["how_to_question"], False), ("a6", 3, ["data_issue"], False)])
        self.preload(team, "a1", 1)
        self.preload(team, "a4", 2)
        self.preload(team, "a5", 1)
        self.preload(team, "a6", 3)
        spec = [("t1", "P1", "technical_issue", 10), ("t2", "P1", "bug_report", 5),
                ("t3", "P2", "account_billing", 30), ("t4", "P2", "technical_issue", 50),
                ("t5", "P2", "how_to_question", 10), ("t6", "P3", "data_issue", 200),
                ("t7", "P3", "bug_report", 100), ("t8", "P3", "technical_issue", 20),
                ("t9", "P4", "other", 400), ("t10", "P4", "how_to_question", 100),
                ("t11", "P0", "performance", 2), ("t12", "P3", "account_billing", 60)]
        t = {name: self.insert_ticket("a", pr, "%d minutes" % ago, cat, assigned_team=q(team))
             for name, pr, cat, ago in spec}
        out = self.call("route_tickets", {"routing_strategy": "auto", "team_filter": team})
        # Order: P0 t11; P1 t1 (risk 10/15) t2 (5/15); P2 t4 (50/60) t3 (30/60) t5 (10/60);
        # P3 t6 (200/240) t7 (100/240) t12 (60/240) t8 (20/240); P4 t9 (400/480) t10 (100/480).
        # Free slots a1 2, a2 3, a3 2, a4 2, a5 1, a6 0; score = 10 x expertise + 2 x free.
        expected = [("t11", "a2", 6), ("t1", "a1", 14), ("t2", "a2", 14), ("t4", "a3", 14),
                    ("t3", "a3", 12), ("t5", "a5", 12), ("t6", "a4", 4), ("t7", "a2", 12),
                    ("t12", "a1", 2), ("t8", "a4", 2)]
        self.assertEqual([(r["ticket_id"], r["assigned_to"], r["score"]) for r in out["routing_results"]],
                         [(t[n], self.a(ag), sc) for n, ag, sc in expected])
        self.assertEqual([u["ticket_id"] for u in out["unrouted"]], [t["t9"], t["t10"]])
        util = {u["agent_id"]: (u["current_tickets"], u["capacity"]) for u in out["agent_utilization"]}
        self.assertEqual(util, {self.a("a1"): (3, 3), self.a("a2"): (3, 3), self.a("a3"): (2, 2),
                                self.a("a4"): (4, 4), self.a("a5"): (2, 2), self.a("a6"): (3, 3)})
        self.assertEqual(out["queue_summary"]["total"], 19)
        self.assertEqual(out["queue_summary"]["unassigned"], 2)
        self.assertEqual(self.sql("SELECT assigned_agent FROM support_tickets WHERE ticket_id = %s" % q(t["t4"])),
                         self.a("a3"))
        # manual: options by (no expertise match, load); nobody has room left
        out = self.call("route_tickets", {"routing_strategy": "manual", "ticket_id": t["t9"], "team_filter": team})
        self.assertEqual(out["routing_options"], [])
        self.assertIsNone(out["recommendation"])
        # a second auto run finds nothing to do
        out = self.call("route_tickets", {"routing_strategy": "auto", "team_filter": team})
        self.assertEqual(out["routing_results"], [])

    def test_manual_options_and_assignment(self):
        team = self.p + " Manual"
        self.agents(team, [("m1", 5, [], False), ("m2", 5, ["bug_report"], False), ("m3", 5, [], False)])
        self.preload(team, "m1", 1)
        self.preload(team, "m2", 3)
        tid = self.insert_ticket("a", "P2", "5 minutes", "bug_report", assigned_team=q(team))
        out = self.call("route_tickets", {"routing_strategy": "manual", "ticket_id": tid, "team_filter": team})
        self.assertEqual([(o["agent_id"], o["expertise_match"], o["current_tickets"]) for o in out["routing_options"]],
                         [(self.a("m2"), True, 3), (self.a("m3"), False, 0), (self.a("m1"), False, 1)])
        self.assertEqual(out["recommendation"]["agent_id"], self.a("m2"))
        self.assertEqual(out["routing_results"], [])
        out = self.call("route_tickets", {"routing_strategy": "manual", "ticket_id": tid, "agent_id": self.a("m3")})
        self.assertEqual(out["routing_results"][0]["assigned_to"], self.a("m3"))
        self.assertIn("already assigned", self.fail_text("route_tickets", {
            "routing_strategy": "manual", "ticket_id": tid, "agent_id": self.a("m3")}))
        self.assertIn("ticket_id is required", self.fail_text("route_tickets", {"routing_strategy": "manual"}))

    def test_rebalance_moves(self):
        team = self.p + " Rebalance"
        self.agents(team, [("b1", 10, [], False), ("b2", 10, [], False), ("b3", 10, [], False), ("b4", 10, [], False)])
        b1 = {}
        for k, pr in enumerate(["P1", "P1", "P2", "P2", "P3", "P3", "P4", "P4"]):
            b1["x%d" % k] = self.insert_ticket("a", pr, "%d minutes" % (500 - k * 10), "other",
                                               assigned_agent=q(self.a("b1")), assigned_team=q(team),
                                               status="'in_progress'")
        self.preload(team, "b2", 2)
        self.preload(team, "b3", 1)
        self.preload(team, "b4", 1)
        out = self.call("route_tickets", {"routing_strategy": "rebalance", "team_filter": team})
        # loads 8, 2, 1, 1: avg 3; overloaded > 5: b1; underloaded < 2: b3, b4. The newest P4
        # (x7) goes to b3 (now 2 = avg - 1: full), the older P4 (x6) to b4; nobody left to take more.
        self.assertEqual(out["average_load"], 3)
        self.assertEqual([(m["ticket_id"], m["from_agent"], m["to_agent"]) for m in out["rebalance_moves"]],
                         [(b1["x7"], self.a("b1"), self.a("b3")), (b1["x6"], self.a("b1"), self.a("b4"))])
        util = {u["agent_id"]: u["current_tickets"] for u in out["agent_utilization"]}
        self.assertEqual(util, {self.a("b1"): 6, self.a("b2"): 2, self.a("b3"): 2, self.a("b4"): 2})
        out = self.call("route_tickets", {"routing_strategy": "rebalance", "team_filter": team})
        self.assertEqual(out["rebalance_moves"], [])

    def test_workload_and_escalation(self):
        team = self.p + " Workload"
        self.agents(team, [("w1", 3, [], False), ("w2", 3, [], True), ("w3", 3, [], False)])
        self.preload(team, "w1", 2)
        self.preload(team, "w3", 1)
        ids = [self.insert_ticket("a", "P3", "%d minutes" % ago, "other", assigned_team=q(team)) for ago in (30, 20, 10)]
        out = self.call("route_tickets", {"routing_strategy": "workload", "team_filter": team})
        # loads w1 2, w2 0, w3 1: oldest (highest risk) first to the least loaded
        self.assertEqual([(r["ticket_id"], r["assigned_to"]) for r in out["routing_results"]],
                         [(ids[0], self.a("w2")), (ids[1], self.a("w2")), (ids[2], self.a("w3"))])
        esc = self.insert_ticket("a", "P3", "15 minutes", "other", assigned_team=q(team),
                                 assigned_agent=q(self.a("w1")), escalated="true")
        out = self.call("route_tickets", {"routing_strategy": "escalation", "team_filter": team})
        r = out["routing_results"]
        self.assertEqual([(x["ticket_id"], x["assigned_to"], x["priority"]) for x in r], [(esc, self.a("w2"), "P1")])
        self.assertEqual(self.sql("SELECT sla_first_response_minutes || '/' || sla_resolution_minutes FROM "
                                  "support_tickets WHERE ticket_id = %s" % q(esc)), "15/240")


class RoutingConcurrency(SupportBase):
    def test_eight_concurrent_auto_runs(self):
        team = self.p + " Crowd"
        agents = ["%s_c%02d" % (self.p, k) for k in range(10)]
        self.sql("INSERT INTO support_agents (agent_id, name, email, team, max_tickets) SELECT a, a, a || '@support.example.com', "
                 "%s, 15 FROM unnest(ARRAY[%s]) a" % (q(team), ", ".join(q(a) for a in agents)))
        self.sql("INSERT INTO support_tickets (ticket_id, client_id, subject, description, priority, category, requester_email, "
                 "requester_name, assigned_team, sla_first_response_minutes, sla_resolution_minutes, created_at) "
                 "SELECT 'TKT-' || nextval('support_ticket_seq'), %s, 'crowd', 'crowd', 'P' || (k %% 5), 'other', "
                 "'c@cust.example.com', 'C', %s, 60, 1440, now() - make_interval(mins => k) FROM generate_series(1, 200) k"
                 % (q(self.cid("b")), q(team)))
        results, errors = [], []

        def run():
            s = self.d.session()
            try:
                results.append(s.call_ok("route_tickets", {"routing_strategy": "auto", "team_filter": team,
                                                           "max_tickets_per_agent": 15}))
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(repr(e))
            finally:
                s.close()
        threads = [threading.Thread(target=run) for _ in range(8)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(120)
        self.assertEqual(errors, [])
        self.assertEqual(len(results), 8)
        routed = [r["ticket_id"] for out in results for r in out["routing_results"]]
        self.assertEqual(len(routed), 150, "10 agents x 15 = 150 slots for 200 tickets")
        self.assertEqual(len(set(routed)), 150, "a ticket was assigned twice")
        loads = self.sql("SELECT string_agg(assigned_agent || '=' || n, ',' ORDER BY assigned_agent) FROM ("
                         "SELECT assigned_agent, count(*) n FROM support_tickets WHERE assigned_team = %s "
                         "GROUP BY 1) x WHERE assigned_agent IS NOT NULL" % q(team))
        self.assertEqual(loads, ",".join("%s=15" % a for a in agents))
        self.assertEqual(self.sql("SELECT count(*) FROM support_tickets WHERE assigned_team = %s AND assigned_agent IS NULL"
                                  % q(team)), "50")
        self.assertEqual(self.sql("SELECT count(*) FROM ticket_comments c JOIN support_tickets t USING (ticket_id) "
                                  "WHERE t.assigned_team = %s AND c.content LIKE 'Routed (auto)%%'" % q(team)), "150")


class KnowledgeBase(SupportBase):
    def kb(self, args):
        return self.call("manage_knowledge_base", args)

    def create(self, title, summary, content, tags, status="published", category=None):
        return self.kb({"action": "create", "title": title, "summary": summary, "content": content,
                        "category": category or self.p + "cat", "tags": tags, "author": "tester",
                        "status": status})["article_id"]

    def test_search_ranking(self):
        w, w2 = self.p + "zorb", self.p + "quux"
        k_content = self.create("Plain title one", "Nothing here", "Deep inside: %s appears once." % w, ["misc"])
        k_title = self.create("Using %s daily" % w, "A summary", "Body text.", ["misc"])
        k_tag = self.create("Plain title two", "Another summary", "Body text.", [w])
        k_both = self.create("Plain title three", "Summary with %s" % w2, "Also %s here." % w, ["misc"])
        k_draft = self.create("Draft %s guide" % w, "s", "c", ["misc"], status="draft")
        k_arch = self.create("Archived %s guide" % w, "s", "c", ["misc"])
        self.call("update_knowledge_base", {"article_id": k_arch, "action": "archive"})
        self.call("update_knowledge_base", {"article_id": k_title, "action": "vote", "helpful_vote": True})
        out = self.kb({"search_query": "how to %s" % w})
        self.assertEqual(out["terms"], "'%s'" % w)
        ids = [a["article_id"] for a in out["articles"]]
        # title (A) > tags (B) > content (C); k_both and k_content tie on the content match
        self.assertEqual(ids, [k_title, k_tag] + sorted([k_both, k_content]))
        ranks = [a["rank"] for a in out["articles"]]
        self.assertEqual(ranks, sorted(ranks, reverse=True))
        self.assertEqual(out["total_matches"], 4)
        self.assertIn("**", out["articles"][0]["headline"])
        # two words: the article matching both ranks above those matching one in the content
        out = self.kb({"search_query": "%s %s" % (w, w2)})
        ids = [a["article_id"] for a in out["articles"]]
        self.assertLess(ids.index(k_both), ids.index(k_content))
        out = self.kb({"search_query": w, "include_drafts": True})
        self.assertEqual(sorted(a["article_id"] for a in out["articles"]), sorted([k_title, k_tag, k_both, k_content, k_draft]))
        self.assertNotIn(k_arch, [a["article_id"] for a in out["articles"]])
        self.assertEqual(self.kb({"search_query": w, "search_category": "nope"})["total_matches"], 0)

    def test_plain_language_queries_work(self):
        out = self.kb({"search_query": "how to update billing"})
        self.assertEqual(out["terms"], "'updat' | 'bill'")
        self.assertIn("KB-1010", [a["article_id"] for a in out["articles"]])
        out = self.kb({"search_query": "select * from users; drop table -- how to export"})
        self.assertGreaterEqual(out["total_matches"], 1)
        self.assertIn("no searchable words", self.fail_text("manage_knowledge_base", {"search_query": "how to the"}))

    def test_search_gaps_recorded(self):
        gap = self.p + "nothingmatches"
        cat = self.p + "gapcat"
        out = self.kb({"search_query": gap, "search_category": cat, "client_id": self.cid("a")})
        self.assertEqual(out["total_matches"], 0)
        out = self.kb({"action": "analytics", "period_days": 1, "search_category": cat})
        self.assertEqual([(g["query"], g["searches"]) for g in out["search_gaps"]], [(gap, 1)])
        self.assertEqual(out["searches_in_period"], 1)

    def test_get_versions_votes(self):
        aid = self.create("Versioned article", "v1 summary", "v1 content", ["alpha"])
        self.assertRegex(aid, r"^KB-[0-9]+$")
        out = self.kb({"action": "get", "article_id": aid, "client_id": self.cid("a")})
        self.assertEqual(out["article"]["view_count"], 1)
        self.assertEqual(out["article"]["content"], "v1 content")
        self.assertEqual(self.sql("SELECT count(*) FROM kb_article_views WHERE article_id = %s AND client_id = %s"
                                  % (q(aid), q(self.cid("a")))), "1")
        up = self.call("update_knowledge_base", {"article_id": aid, "title": "Versioned article v2", "tags": ["beta", "alpha"]})
        self.assertEqual((up["version"], up["previous_version"], up["changes"]), (2, 1, ["title", "tags"]))
        self.assertEqual(self.sql("SELECT title || '|' || array_to_string(tags, ',') FROM kb_article_versions "
                                  "WHERE article_id = %s AND version = 1" % q(aid)), "Versioned article|alpha")
        self.assertIn("nothing changes", self.fail_text("update_knowledge_base", {"article_id": aid, "title": "Versioned article v2"}))
        out = self.call("update_knowledge_base", {"article_id": aid, "action": "increment_version"})
        self.assertEqual(out["version"], 3)
        for v in (True, True, True, False):
            out = self.call("update_knowledge_base", {"article_id": aid, "action": "vote", "helpful_vote": v})
        self.assertEqual(out["vote"], {"helpful": False, "helpful_votes": 3, "not_helpful_votes": 1, "helpfulness_score": 0.75})
        self.assertIn("already published", self.fail_text("update_knowledge_base", {"article_id": aid, "action": "publish"}))
        self.call("update_knowledge_base", {"article_id": aid, "action": "archive"})
        self.assertIn("it is archived; only published articles take votes", self.fail_text(
            "update_knowledge_base", {"article_id": aid, "action": "vote", "helpful_vote": True}))
        self.assertIn("helpful_vote (true or false) is required", self.fail_text(
            "update_knowledge_base", {"article_id": aid, "action": "vote"}))
        self.assertEqual(self.fail_text("update_knowledge_base", {"article_id": "KB-999999999"}), "article KB-999999999 not found")
        self.invalid_params("update_knowledge_base", {"article_id": "KB-x"}, "article_id")
        self.invalid_params("manage_knowledge_base", {"action": "get", "article_id": "kb-1"}, "article_id")
        out = self.kb({"action": "create", "title": "No votes", "summary": "s", "content": "c", "category": "x",
                       "tags": ["t"], "author": "a"})
        self.assertEqual(out["article"]["helpfulness_score"], 0)

    def test_recommend_for_ticket(self):
        cat = "integration_support"
        w = self.p + "webhookx"
        aid = self.create("Fix %s retries" % w, "s", "c", ["webhooks"], category=cat)
        tid = self.insert_ticket("nov", "P3", "5 minutes", cat)
        self.sql("UPDATE support_tickets SET subject = %s WHERE ticket_id = %s" % (q("My %s fail" % w), q(tid)))
        out = self.kb({"action": "recommend", "ticket_id": tid, "limit": 5})
        self.assertEqual(out["articles"][0]["article_id"], aid)
        self.assertTrue(out["articles"][0]["category_match"])
        self.assertGreater(out["articles"][0]["score"], 1)


class Portal(SupportBase):
    def portal(self, args):
        return self.call("manage_customer_portal", dict({"client_id": self.cid("b")}, **args))

    def test_features_branding_resources_activity(self):
        out = self.portal({})
        self.assertEqual((out["portal"]["configured"], out["portal"]["features"]), (False, ["tickets", "kb"]))
        self.assertIsNone(out["portal"]["portal_url"])
        out = self.portal({"action": "enable_feature", "enable_feature": "downloads"})
        self.assertEqual(out["portal"]["features"], ["tickets", "kb", "downloads"])
        self.assertIn("already enabled", self.fail_text("manage_customer_portal", {
            "client_id": self.cid("b"), "action": "enable_feature", "enable_feature": "downloads"}))
        out = self.portal({"action": "customize", "customize_branding": {"primary_color": "#112233", "custom_domain": "help.acme.com"}})
        self.assertEqual(out["portal"]["portal_url"], "https://help.acme.com")
        self.invalid_params("manage_customer_portal", {"client_id": self.cid("b"), "action": "customize",
                                                      "customize_branding": {"primary_color": "red"}}, "primary_color")
        self.assertIn("custom_domain must be a lower-case host name", self.fail_text("manage_customer_portal", {
            "client_id": self.cid("b"), "action": "customize", "customize_branding": {"custom_domain": "Not A Host"}}))
        out = self.portal({"action": "customize", "customize_branding": {"primary_color": None}})
        self.assertEqual(out["portal"]["branding"], {"custom_domain": "help.acme.com"})
        out = self.portal({"action": "list_resources", "resource_type": "downloads"})
        n_down = int(self.sql("SELECT count(*) FROM portal_resources WHERE resource_type = 'downloads' AND client_id IS NULL"))
        self.assertEqual(len(out["resources"]), min(n_down, 50))
        self.portal({"action": "disable_feature", "disable_feature": "downloads"})
        self.assertEqual(self.portal({"action": "list_resources", "resource_type": "downloads"})["resources"], [])
        self.assertIn("is not enabled", self.fail_text("manage_customer_portal", {
            "client_id": self.cid("b"), "action": "disable_feature", "disable_feature": "downloads"}))
        self.assertIn("not found in the portal", self.fail_text("manage_customer_portal", {
            "client_id": self.cid("b"), "action": "list_resources", "resource_id": "RES-999999"}))
        out = self.portal({"action": "get_activity"})
        types = [a["type"] for a in out["activity"]]
        self.assertEqual(types.count("portal_enable_feature"), 1)
        self.assertEqual(types.count("portal_customize"), 2)
        self.assertEqual(self.sql("SELECT count(*) FROM activity_log WHERE client_id = %s AND entity = 'portal'"
                                  % q(self.cid("b"))), "4")
        self.assertIn("client not found", self.fail_text("manage_customer_portal", {"client_id": self.p + "_none"}))


class Performance(SupportBase):
    """Client perf, period 30 days (hand-computed):
    T1 P2 created 10 d ago, first response +30 min (met), resolved +1000 min (met), rated 5;
    T2 P2 created 8 d ago, +90 min (breached), resolved +2000 min (breached), rated 2;
    T3 P3 created 5 d ago, +100 min (met), resolved +3000 min (breached, target 2880), unrated;
    T4 P1 created 3 d ago, +10 min (met), open, escalated (resolution running: breached now);
    T5 P4 created 40 d ago, +100 min (previous period, met), resolved 20 d ago (28800 min: breached), rated 4.
    Portal: 6 KB views by the client in the period, 2 older."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.agent = cls.p + "_pa"
        cls.sql("INSERT INTO support_agents (agent_id, name, email, team) VALUES (%s, 'Perf Agent', %s, %s)"
                % (q(cls.agent), q(cls.agent + "@support.example.com"), q(cls.p + " Perf")))
        c = q(cls.cid("perf"))
        rows = [  # priority, created (days ago), first response (min), resolved (min), rating, rated (days ago), escalated
            ("P2", 10, 30, 1000, 5, 9, False), ("P2", 8, 90, 2000, 2, 6, False), ("P3", 5, 100, 3000, None, None, False),
            ("P1", 3, 10, None, None, None, True), ("P4", 40, 100, 20 * 1440, 4, 19, False)]
        for k, (pr, days, fr, res, rating, rated, esc) in enumerate(rows):
            cls.sql(
                "INSERT INTO support_tickets (ticket_id, client_id, subject, description, priority, category, status, "
                "requester_email, requester_name, assigned_agent, assigned_team, sla_first_response_minutes, "
                "sla_resolution_minutes, created_at, first_response_at, resolved_at, satisfaction_rating, rated_at, escalated) "
                "SELECT 'TKT-' || nextval('support_ticket_seq'), %s, 'perf %d', 'd', %s, 'technical_issue', %s, "
                "'p@cust.example.com', 'P', %s, %s, %d, %d, c, c + interval '%d minutes', %s, %s, %s, %s "
                "FROM (SELECT now() - interval '%d days' AS c) x" % (
                    c, k, q(pr), "'in_progress'" if res is None else "'resolved'", q(cls.agent) if k < 2 else "NULL",
                    q(cls.p + " Perf"), SLA[pr][0], SLA[pr][1], fr,
                    "NULL" if res is None else "c + interval '%d minutes'" % res,
                    "NULL" if rating is None else str(rating),
                    "NULL" if rated is None else "now() - interval '%d days'" % rated, "true" if esc else "false", days))
        cls.sql("INSERT INTO kb_article_views (article_id, client_id, viewed_at) SELECT 'KB-1001', %s, "
                "now() - make_interval(days => d) FROM unnest(ARRAY[1, 2, 3, 5, 8, 13, 40, 50]) d" % c)

    def perf(self, **kw):
        return self.call("analyze_support_performance", dict({"client_id": self.cid("perf")}, **kw))

    def test_overview_figures(self):
        m = self.perf()["metrics"]
        self.assertEqual((m["tickets_created"], m["tickets_resolved"], m["tickets_escalated"]), (4, 4, 1))
        self.assertEqual(m["first_response"], {"met": 3, "breached": 1, "compliance": 0.75, "avg_minutes": 57.5})
        self.assertEqual(m["resolution"], {"met": 1, "breached": 3, "compliance": 0.25, "avg_minutes": 8700})
        self.assertEqual(m["sla_compliance"], 0.5)
        self.assertEqual((m["csat"], m["ratings"], m["response_rate"], m["negative_share"]), (3.67, 3, 0.75, 0.333))
        self.assertEqual(m["rating_distribution"], {"1": 0, "2": 1, "3": 0, "4": 1, "5": 1})
        self.assertEqual(m["escalation_rate"], 0.25)
        self.assertEqual((m["kb_portal_views"], m["deflection_rate"]), (6, 0.6))
        out = self.perf()
        self.assertEqual(out["open_now"], {"open": 1, "unassigned": 1, "at_risk": 0, "breached": 1})
        self.assertEqual([r["rule"] for r in out["recommendations"]],
                         ["sla_compliance < 0.9", "csat < 4.0", "escalation_rate > 0.1"])
        # trends: buckets of 7 days, created 0, 0, 2, 2 -> slope 0.8, next 3.0, increasing
        self.assertEqual([b["tickets_created"] for b in out["trends"]["buckets"]], [0, 0, 2, 2])
        self.assertEqual(out["forecast"]["next_bucket_tickets_created"], 3.0)
        self.assertEqual(out["forecast"]["direction"], "increasing")

    def test_sla_satisfaction_agent_comparison(self):
        out = self.perf(analysis_type="sla")
        p2 = [p for p in out["by_priority"] if p["priority"] == "P2"][0]
        self.assertEqual((p2["first_response"]["met"], p2["first_response"]["breached"], p2["resolution"]["breached"]), (1, 1, 1))
        self.assertEqual([(a["priority"], a["sla_state"]) for a in out["critical_alerts"]], [("P1", "breached")])
        rules = [r["rule"] for r in out["recommendations"]]
        self.assertIn("resolution compliance < 0.85", rules)
        self.assertNotIn("first-response breaches > 5", rules)
        out = self.perf(analysis_type="satisfaction")
        self.assertEqual([r["rule"] for r in out["recommendations"]][-2:], ["response_rate < 0.8", "negative_share > 0.15"])
        self.assertEqual([t["rating"] for t in out["low_rated_tickets"]], [2])
        out = self.perf(analysis_type="agent")
        ag = [a for a in out["agent_performance"] if a["agent_id"] == self.agent][0]
        self.assertEqual((ag["tickets_created"], ag["resolution"]["met"], ag["resolution"]["breached"], ag["csat"]), (2, 1, 1, 3.5))
        out = self.perf(analysis_type="comparison")
        c = out["comparison"]
        self.assertEqual(c["tickets_created"], {"current": 4, "previous": 1, "change": 3, "direction": "up"})
        self.assertEqual(c["first_response_compliance"], {"current": 0.75, "previous": 1, "change": -0.25, "direction": "down"})
        out = self.perf(analysis_type="knowledge_base")
        self.assertEqual((out["kb_metrics"]["portal_views"], out["kb_metrics"]["deflection_rate"]), (6, 0.6))
        m = self.call("analyze_support_performance", {"client_id": self.cid("nov")})["metrics"]
        self.assertIsNone(m["deflection_rate"])
        self.assertIn("no data", m["deflection_note"])
        m = self.perf(priority_filter="P2")["metrics"]
        self.assertEqual((m["tickets_created"], m["deflection_rate"]), (2, None))
        self.assertIn("not applicable", m["deflection_note"])
        self.assertIn("support agent nobody not found", self.fail_text("analyze_support_performance", {"agent_filter": "nobody"}))
        self.invalid_params("analyze_support_performance", {"period_days": 0}, "period_days")

    def test_demo_data_gives_plausible_figures(self):
        out = self.call("analyze_support_performance", {"period_days": 90})
        m = out["metrics"]
        self.assertGreater(m["tickets_created"], 0)
        for k in ("sla_compliance", "csat", "deflection_rate"):
            self.assertIsNotNone(m[k], k)
        self.assertTrue(0 < m["sla_compliance"] < 1)
        self.assertTrue(3 < m["csat"] < 5)


class Scopes(lib.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = lib.Csmcpd(workers=1, auth=True, conf=NO_LIMITS).start()
        cls.read = su.create_key(cls.d.conf_path, "read", "support-read")

    @classmethod
    def tearDownClass(cls):
        cls.d.stop()

    def test_read_key_reads_but_cannot_write(self):
        s = lib.McpSession(self.d.port, token=self.read)
        try:
            for name, args in (("handle_support_ticket", {"action": "list", "limit": 1}),
                               ("manage_knowledge_base", {"search_query": "billing"}),
                               ("manage_knowledge_base", {"action": "analytics"}),
                               ("analyze_support_performance", {}),
                               ("manage_customer_portal", {"client_id": "demo_00001"})):
                st, _, msgs = s.request_raw("tools/call", {"name": name, "arguments": args})
                self.assertEqual(st, 200, (name, msgs))
            for name, args in (("handle_support_ticket", {"action": "create"}),
                               ("handle_support_ticket", {"action": "close", "ticket_id": "TKT-1"}),
                               ("route_tickets", {}),
                               ("manage_knowledge_base", {"action": "create"}),
                               ("update_knowledge_base", {"article_id": "KB-1"}),
                               ("manage_customer_portal", {"client_id": "demo_00001", "action": "enable_feature"})):
                st, h, _ = s.request_raw("tools/call", {"name": name, "arguments": args})
                self.assertEqual(st, 403, name)
                self.assertIn('scope="write"', h.get("www-authenticate", ""))
        finally:
            s.close()



class SdkWorkflow(lib.TestCase):
    """create P2 -> route -> agent comment -> escalate -> resolve -> rate -> close -> performance
    report, through the official TypeScript SDK client (tests/integration/support_sdk_workflow.mjs)."""

    def test_workflow_through_typescript_sdk(self):
        agent = du.prefix() + "_sdk"
        du.psql(lib.database_url(), "INSERT INTO support_agents (agent_id, name, email, team, max_tickets) VALUES "
                "(%s, 'SDK Agent', %s, %s, 3); INSERT INTO support_agent_expertise VALUES (%s, 'performance')"
                % (q(agent), q(agent + "@support.example.com"), q(agent + " team"), q(agent)))
        rc, out = lib.run_sdk_workflow("support_sdk_workflow.mjs", agent, agent + " team", conf=NO_LIMITS)
        self.assertEqual(rc, 0, out)
        self.assertIn("9 passed, 0 failed", out)
