"""automate_communications workflows evaluated (issue 16): every trigger type on hand-built
fixtures with the exact accounts that fire (and those that must not), occurrence uniqueness and
the cooldown of level triggers; every action type executed in order with its exact result; a
failing action stopping the run; delay (pending -> executed when due), pause cancelling a pending
run, paused workflows never evaluated; custom workflows fired on request; and the real monitor
process running the communication tick (csmcp.comm_tick) end to end.
Evaluation is called per workflow (csmcp.comm_workflows_evaluate(actor, workflow_id)) so that other
workflows in the shared test database do not interfere; scoping by trigger_conditions.client_ids is
itself part of what is tested."""
import json

import data_util as du
import lib

CHANNELS = ("sendgrid", "slack", "intercom", "webhook")


class WorkflowEvaluationTest(lib.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.url = lib.database_url()
        cls.p = du.prefix()
        p = cls.p
        du.psql(cls.url, (
            "INSERT INTO accounts (client_id, client_name, company_name, tier, csm_assigned, health_score, created_at) VALUES "
            "('{p}_x1', 'Xenon One', 'Xenon One Ltd', 'starter', 'Grace Hopper', 30, now() - interval '60 days'), "
            "('{p}_x2', 'Xenon Two', 'Xenon Two Ltd', 'starter', NULL, 70, now() - interval '30 days'), "
            "('{p}_x3', 'Xenon Three', 'Xenon Three Ltd', 'enterprise', NULL, 45, now()), "
            "('{p}_x4', 'Xenon Four', 'Xenon Four Ltd', 'professional', NULL, 90, now() - interval '90 days');\n"
            "INSERT INTO accounts (client_id, client_name, company_name, tier, status, health_score) VALUES "
            "('{p}_gone', 'Gone', 'Gone Ltd', 'starter', 'churned', 10);\n"
            "INSERT INTO contacts (client_id, name, email, title, is_primary, unsubscribed) VALUES "
            "('{p}_x1', 'Ivy Reed', 'ivy@x1-{p}.test', 'COO', true, false), "
            "('{p}_x1', 'Jon Reed', 'jon@x1-{p}.test', NULL, false, false), "
            "('{p}_x2', 'Kai Opt', 'kai@x2-{p}.test', NULL, true, true), "
            "('{p}_gone', 'Lee Gone', 'lee@gone-{p}.test', NULL, true, false);\n"
            # usage: x1 used the product recently (events 20/day this week, 100/day the week before: -80 %),
            # x2 never, x4 7 active users a day this week
            "INSERT INTO usage_daily (client_id, day, active_users, events, session_minutes) "
            "SELECT '{p}_x1', csmcp.today() - i, 3, CASE WHEN i < 7 THEN 20 ELSE 100 END, 10 FROM generate_series(0, 13) i;\n"
            "INSERT INTO usage_daily (client_id, day, active_users, events, session_minutes) "
            "SELECT '{p}_x4', csmcp.today() - i, 7, 50, 30 FROM generate_series(0, 6) i;\n"
            "INSERT INTO features (feature_id, name) VALUES ('{p}_reports', 'Reports {p}');\n"
            # x2 used the feature 10 days ago (before any workflow exists), x1 uses it today
            "INSERT INTO usage_feature_daily (client_id, day, feature_id, events, users) VALUES "
            "('{p}_x1', csmcp.today(), '{p}_reports', 4, 1), ('{p}_x2', csmcp.today() - 10, '{p}_reports', 2, 1);\n"
            "INSERT INTO contracts (contract_id, client_id, tier, contract_value, start_date, end_date, status) VALUES "
            "('CTR-{p}-1', '{p}_x1', 'starter', 1000, csmcp.today() - 345, csmcp.today() + 20, 'active'), "
            "('CTR-{p}-2', '{p}_x2', 'starter', 1000, csmcp.today() - 400, csmcp.today() - 3, 'active'), "
            "('CTR-{p}-3', '{p}_x3', 'enterprise', 9000, csmcp.today() - 300, csmcp.today() + 65, 'active');\n"
            "INSERT INTO renewals (renewal_id, contract_id, client_id, renewal_date, status, current_arr) VALUES "
            "('REN-{p}-1', 'CTR-{p}-1', '{p}_x1', csmcp.today() + 20, 'on_track', 1000), "
            "('REN-{p}-2', 'CTR-{p}-3', '{p}_x3', csmcp.today() + 40, 'at_risk', 9000), "
            "('REN-{p}-3', 'CTR-{p}-3', '{p}_x3', csmcp.today() + 10, 'won', 9000);\n"
        ).format(p=p))
        cls.saved = du.psql(cls.url, "SELECT coalesce(json_agg(json_build_object('c', channel, 'e', enabled)), '[]') "
                                     "FROM integrations WHERE channel IN ('sendgrid', 'slack', 'intercom', 'webhook')")
        cls.d = lib.Csmcpd(workers=1).start()
        cls.s = cls.d.session()

    @classmethod
    def tearDownClass(cls):
        cls.s.close()
        cls.d.stop()
        du.psql(cls.url, "DELETE FROM integrations WHERE channel IN ('sendgrid', 'slack', 'intercom', 'webhook');"
                         "INSERT INTO integrations (channel, enabled) SELECT x->>'c', (x->>'e')::boolean "
                         "FROM json_array_elements('%s'::json) x;" % cls.saved)
        du.psql(cls.url, "DELETE FROM outbox WHERE client_id LIKE '{p}\\_%'; "
                         "DELETE FROM communication_workflows WHERE created_by = '{p}'; "
                         "DELETE FROM support_tickets WHERE client_id LIKE '{p}\\_%'; "
                         "DELETE FROM accounts WHERE client_id LIKE '{p}\\_%'; "
                         "DELETE FROM features WHERE feature_id = '{p}_reports'".format(p=cls.p))

    # ------------------------------------------------------------ helpers

    def q(self, sql):
        return du.psql(self.url, sql)

    def cid(self, k):
        return "%s_%s" % (self.p, k)

    def channels(self, on):
        self.q(";".join("INSERT INTO integrations (channel, enabled) VALUES ('%s', %s) ON CONFLICT (channel) DO UPDATE "
                        "SET enabled = EXCLUDED.enabled, settings = '{}'" % (c, "true" if on else "false") for c in CHANNELS))

    def create(self, trigger, cond, actions=None, **kw):
        args = {"action": "create", "workflow_name": "%s %s" % (trigger, self.p), "description": "wf %s" % self.p,
                "trigger_type": trigger, "trigger_conditions": cond,
                "actions": actions or [{"type": "create_task", "title": "Follow up {{client_name}}"}]}
        args.update(kw)
        wid = self.s.call_ok("automate_communications", args)["workflow"]["workflow_id"]
        self.q("UPDATE communication_workflows SET created_by = '%s' WHERE workflow_id = '%s'" % (self.p, wid))
        return wid

    def evaluate(self, wid):
        return json.loads(self.q("SELECT csmcp.comm_workflows_evaluate('test', '%s')" % wid))

    def runs(self, wid):
        return json.loads(self.q(
            "SELECT coalesce(json_agg(json_build_object('c', client_id, 'k', trigger_key, 'o', outcome, 'd', detail, "
            "'a', actions) ORDER BY client_id, trigger_key), '[]') FROM workflow_runs WHERE workflow_id = '%s'" % wid))

    def fired(self, wid):
        return [(r["c"][len(self.p) + 1:], r["k"]) for r in self.runs(wid)]

    def scope(self, *ks):
        return [self.cid(k) for k in ks]

    # ------------------------------------------------------------ triggers

    def test_time_based_once_per_period(self):
        wid = self.create("time_based", {"schedule": "daily", "client_ids": self.scope("x1", "x2", "gone")})
        self.assertEqual(self.evaluate(wid)["workflows"], [{"workflow_id": wid, "fired": 2}])
        day = self.q("SELECT to_char(date_trunc('day', now() AT TIME ZONE 'UTC'), 'YYYY-MM-DD\"T\"HH24')")
        self.assertEqual(self.fired(wid), [("x1", "period:" + day), ("x2", "period:" + day)])  # the churned account never
        self.assertEqual(self.evaluate(wid)["workflows"], [{"workflow_id": wid, "fired": 0}])  # same period: once
        self.assertEqual(self.runs(wid)[0]["d"]["schedule"], "daily")

    def test_event_based_once_per_activity_row(self):
        wid = self.create("event_based", {"event": "support_ticket.create", "client_ids": self.scope("x1", "x2")})
        self.q("INSERT INTO activity_log (client_id, actor, action, entity, entity_id, occurred_at) VALUES "
               "('{p}_x1', 't', 'create', 'support_ticket', 'TKT-1', now() - interval '1 hour'), "  # before the workflow
               "('{p}_x1', 't', 'create', 'support_ticket', 'TKT-2', now() + interval '1 second'), "
               "('{p}_x1', 't', 'update', 'support_ticket', 'TKT-2', now() + interval '1 second'), "  # other action
               "('{p}_x2', 't', 'create', 'support_ticket', 'TKT-3', now() + interval '1 second'), "
               "('{p}_x3', 't', 'create', 'support_ticket', 'TKT-4', now() + interval '1 second')".format(p=self.p))  # out of scope
        ids = self.q("SELECT string_agg(activity_id::text, ',' ORDER BY entity_id) FROM activity_log WHERE client_id "
                     "LIKE '%s\\_%%' AND entity_id IN ('TKT-2', 'TKT-3') AND action = 'create'" % self.p).split(",")
        self.evaluate(wid)
        self.assertEqual(self.fired(wid), [("x1", "activity:" + ids[0]), ("x2", "activity:" + ids[1])])
        self.assertEqual(self.runs(wid)[0]["d"]["entity_id"], "TKT-2")
        self.evaluate(wid)
        self.assertEqual(len(self.runs(wid)), 2)

    def test_behavior_based(self):
        scope = self.scope("x1", "x2", "x3", "x4")
        inactive = self.create("behavior_based", {"behavior": "inactive", "days": 14, "client_ids": scope})
        self.evaluate(inactive)
        # x2: no usage, account 30 days old; x3: no usage but created today; x1/x4 used the product
        self.assertEqual(self.fired(inactive), [("x2", None)])
        self.assertEqual(self.runs(inactive)[0]["d"]["last_active_day"], None)
        drop = self.create("behavior_based", {"behavior": "usage_drop", "days": 7, "percent": 80, "client_ids": scope})
        self.evaluate(drop)
        self.assertEqual(self.fired(drop), [("x1", None)])  # 7 x 100 -> 7 x 20 events: -80.0 %
        d = self.runs(drop)[0]["d"]
        self.assertEqual((d["events_previous"], d["events_current"], d["drop_percent"]), (700, 140, 80.0))
        drop81 = self.create("behavior_based", {"behavior": "usage_drop", "days": 7, "percent": 80.1, "client_ids": scope})
        self.evaluate(drop81)
        self.assertEqual(self.fired(drop81), [])
        first = self.create("behavior_based", {"behavior": "feature_first_use", "feature_id": "%s_reports" % self.p,
                                               "client_ids": scope})
        self.evaluate(first)
        # x1 first used it today; x2's first use predates the workflow
        self.assertEqual(self.fired(first), [("x1", "feature_first_use:%s_reports" % self.p)])

    def test_health_score_below_with_cooldown(self):
        self.q("UPDATE accounts SET health_score = v FROM (VALUES ('x1', 30), ('x2', 70), ('x3', 45)) t(k, v) "
               "WHERE client_id = '%s_' || k" % self.p)  # (update_health_score actions of other tests recalculate)
        wid = self.create("health_score", {"threshold": 45, "direction": "below", "cooldown_hours": 24,
                                           "client_ids": self.scope("x1", "x2", "x3", "gone")})
        self.evaluate(wid)
        self.assertEqual(self.fired(wid), [("x1", None)])  # 30 < 45; x3 = 45 is not below; gone is churned
        self.assertEqual(self.runs(wid)[0]["d"]["health_score"], 30)
        self.evaluate(wid)
        self.assertEqual(len(self.runs(wid)), 1)  # cooldown
        self.q("UPDATE workflow_runs SET fired_at = now() - interval '24 hours 1 minute' WHERE workflow_id = '%s'" % wid)
        self.evaluate(wid)
        self.assertEqual(len(self.runs(wid)), 2)  # after the cooldown it fires again
        above = self.create("health_score", {"threshold": 45, "direction": "above", "tier": "starter",
                                             "client_ids": self.scope("x1", "x2", "x3", "x4")})
        self.evaluate(above)
        self.assertEqual(self.fired(above), [("x2", None)])  # 70 > 45 and starter (x4: 90, professional)

    def test_milestone(self):
        wid = self.create("milestone", {"milestone_name": "Go Live", "client_ids": self.scope("x1", "x2", "x3")})
        self.q("INSERT INTO onboarding_plans (plan_id, client_id, name, product_tier, start_date, target_date) VALUES "
               "('plan_{p}', '{p}_x1', 'p', 'starter', csmcp.today() - 30, csmcp.today() + 30);"
               "INSERT INTO onboarding_milestones (milestone_id, plan_id, seq, name, week, estimated_hours, completed_on, "
               "status) VALUES ('ms_{p}_1', 'plan_{p}', 1, 'go-live', 4, 8, csmcp.today(), 'completed'), "
               "('ms_{p}_2', 'plan_{p}', 2, 'Go Live', 5, 8, NULL, 'in_progress'), "
               "('ms_{p}_3', 'plan_{p}', 3, 'Kickoff', 1, 8, csmcp.today(), 'completed');"
               "INSERT INTO adoption_milestones (client_id, milestone, achieved_on) VALUES "
               "('{p}_x2', 'GO_LIVE', csmcp.today()), ('{p}_x3', 'go_live', csmcp.today() - 5)".format(p=self.p))
        self.evaluate(wid)
        # x1: onboarding milestone go-live completed today; x2: adoption milestone today; x3's predates the workflow
        self.assertEqual(self.fired(wid), [("x1", "onboarding_milestone:ms_%s_1" % self.p),
                                           ("x2", "adoption_milestone:GO_LIVE")])

    def test_contract_events(self):
        scope = self.scope("x1", "x2", "x3")
        due = self.create("contract_event", {"event_type": "renewal_due", "days_before": 30, "client_ids": scope})
        self.evaluate(due)
        # REN-1 in 20 days; REN-2 in 40 (> 30); REN-3 won
        self.assertEqual(self.fired(due), [("x1", "renewal_due:REN-%s-1" % self.p)])
        self.assertEqual(self.runs(due)[0]["d"]["days_until"], 20)
        won = self.create("contract_event", {"event_type": "renewal_won", "client_ids": scope})
        self.evaluate(won)
        self.assertEqual(self.fired(won), [])  # REN-3 was won before the workflow existed
        self.q("UPDATE renewals SET updated_at = now() + interval '1 second' WHERE renewal_id = 'REN-%s-3'" % self.p)
        self.evaluate(won)
        self.assertEqual(self.fired(won), [("x3", "renewal_won:REN-%s-3" % self.p)])
        expired = self.create("contract_event", {"event_type": "contract_expired", "client_ids": scope})
        self.evaluate(expired)
        self.assertEqual(self.fired(expired), [("x2", "contract_expired:CTR-%s-2" % self.p)])

    def test_usage_pattern(self):
        scope = self.scope("x1", "x2", "x4")
        low = self.create("usage_pattern", {"metric": "events", "threshold": 140, "period_days": 7, "client_ids": scope})
        self.evaluate(low)
        self.assertEqual(self.fired(low), [("x2", None)])  # x1 = 140 is not below 140; x4 = 350
        self.assertEqual(self.runs(low)[0]["d"]["value"], 0)
        avg = self.create("usage_pattern", {"metric": "active_users", "threshold": 6.99, "direction": "above",
                                            "period_days": 7, "client_ids": scope})
        self.evaluate(avg)
        self.assertEqual(self.fired(avg), [("x4", None)])  # 49 / 7 = 7.00 > 6.99; x1 = 21 / 7 = 3.00
        self.assertEqual(self.runs(avg)[0]["d"]["value"], 7.0)
        avg14 = self.create("usage_pattern", {"metric": "active_users", "threshold": 3.5, "direction": "above",
                                              "period_days": 14, "client_ids": scope})
        self.evaluate(avg14)
        self.assertEqual(self.fired(avg14), [])  # x4: 49 / 14 = 3.50 (days without usage count 0); x1: 42 / 14 = 3.00

    def test_custom_fired_on_request_and_paused_never_evaluated(self):
        wid = self.create("custom", {})
        self.assertEqual(self.evaluate(wid)["workflows"], [])  # custom never fires by itself
        out = self.s.call_ok("automate_communications", {"action": "fire", "workflow_id": wid,
                                                        "client_ids": [self.cid("x1"), self.cid("gone")]})
        self.assertEqual([(f["client_id"], f["outcome"]) for f in out["fired"]],
                         [(self.cid("gone"), "not_in_scope (churned, or outside the tier/client_ids conditions)"),
                          (self.cid("x1"), "succeeded")])
        r = self.s.call_tool("automate_communications", {"action": "fire", "workflow_id": wid,
                                                        "client_ids": ["%s_nobody" % self.p]})
        self.assertIn("client not found: %s_nobody" % self.p, r["content"][0]["text"])
        hs = self.create("health_score", {"threshold": 100, "direction": "below", "client_ids": self.scope("x1")},
                         is_active=False)
        self.assertEqual(self.evaluate(hs)["workflows"], [])
        self.assertEqual(self.runs(hs), [])
        r = self.s.call_tool("automate_communications", {"action": "fire", "workflow_id": hs, "client_ids": [self.cid("x1")]})
        self.assertIn("only custom workflows are fired on request", r["content"][0]["text"])

    # ------------------------------------------------------------ actions

    def test_every_action_in_order(self):
        self.channels(True)
        try:
            wid = self.create("custom", {}, actions=[
                {"type": "create_task", "title": "Call {{first_name}} at {{client_name}}", "due_days": 5},
                {"type": "send_email", "subject": "Hi {{first_name}}", "body": "From {{workflow_name}}",
                 "sender_email": "cs@csmcp.test", "to": "all_contacts"},
                {"type": "send_slack_message", "message": "{{client_id}} needs attention", "channel": "#cs"},
                {"type": "update_health_score"},
                {"type": "create_ticket", "subject": "Check-in for {{client_name}}", "priority": "P2"},
                {"type": "schedule_meeting", "title": "QBR {{client_name}}", "days_from_now": 10},
                {"type": "send_in_app_notification", "message": "Hello {{first_name}}"},
                {"type": "trigger_webhook", "payload": {"k": 1}},
                {"type": "send_sms", "message": "hi"}])
            out = self.s.call_ok("automate_communications", {"action": "fire", "workflow_id": wid,
                                                            "client_ids": [self.cid("x1")]})
        finally:
            self.channels(False)
        run_id = out["fired"][0]["run_id"]
        self.assertEqual(out["fired"][0]["outcome"], "partial")  # everything done but the SMS (no provider)
        acts = self.runs(wid)[0]["a"]
        self.assertEqual([(a["seq"], a["type"], a["state"]) for a in acts], [
            (1, "create_task", "done"), (2, "send_email", "done"), (3, "send_slack_message", "done"),
            (4, "update_health_score", "done"), (5, "create_ticket", "done"), (6, "schedule_meeting", "done"),
            (7, "send_in_app_notification", "done"), (8, "trigger_webhook", "done"), (9, "send_sms", "not_configured")])
        x1 = self.cid("x1")
        self.assertEqual(self.q("SELECT title || '|' || assignee || '|' || (due_date - csmcp.today()) || '|' || run_id "
                                "FROM workflow_tasks WHERE task_id = %d" % acts[0]["task_id"]),
                         "Call Ivy at Xenon One|Grace Hopper|5|%d" % run_id)
        self.assertEqual(acts[1]["messages"], 2)  # ivy and jon
        self.assertEqual(self.q("SELECT string_agg(m.email || ':' || m.subject || ':' || m.body_text || ':' || o.state || ':' "
                                "|| o.idempotency_key, ',' ORDER BY m.email) FROM email_messages m JOIN outbox o "
                                "ON o.id = m.outbox_id WHERE m.workflow_run_id = %d" % run_id),
                         "ivy@x1-{p}.test:Hi Ivy:From custom {p}:queued:email_message:{m0},"
                         "jon@x1-{p}.test:Hi Jon:From custom {p}:queued:email_message:{m1}".format(
                             p=self.p, m0=acts[1]["message_ids"][0], m1=acts[1]["message_ids"][1]))
        slack = json.loads(self.q("SELECT json_build_object('k', idempotency_key, 'p', payload) FROM outbox "
                                  "WHERE id = %d" % acts[2]["outbox_id"]))
        self.assertEqual(slack, {"k": "workflow_run:%d:3" % run_id,
                                 "p": {"text": "%s needs attention" % x1, "channel": "#cs", "workflow_id": wid,
                                       "client_id": x1}})
        self.assertEqual(acts[3]["health_score"], int(self.q("SELECT health_score FROM accounts WHERE client_id = '%s'" % x1)))
        self.assertEqual(self.q("SELECT count(*) FROM health_scores WHERE client_id = '%s'" % x1), "1")
        self.assertEqual(self.q("SELECT subject || '|' || priority || '|' || requester_email FROM support_tickets "
                                "WHERE ticket_id = '%s'" % acts[4]["ticket_id"]),
                         "Check-in for Xenon One|P2|ivy@x1-%s.test" % self.p)
        self.assertEqual(self.q("SELECT channel || '|' || subject || '|' || status || '|' || "
                                "(scheduled_for::date - now()::date) FROM communications WHERE communication_id = %d"
                                % acts[5]["communication_id"]), "meeting|QBR Xenon One|scheduled|10")
        intercom = json.loads(self.q("SELECT payload FROM outbox WHERE id = %d" % acts[6]["outbox_id"]))
        self.assertEqual(intercom, {"body": {"message_type": "inapp", "body": "Hello Ivy",
                                             "to": {"type": "user", "email": "ivy@x1-%s.test" % self.p}}})
        hook = json.loads(self.q("SELECT payload FROM outbox WHERE id = %d" % acts[7]["outbox_id"]))
        self.assertEqual((hook["event"], hook["run_id"], hook["client_id"], hook["data"], hook["trigger"]["trigger"]),
                         ("workflow.fired", run_id, x1, {"k": 1}, "custom"))
        got = self.s.call_ok("automate_communications", {"action": "get", "workflow_id": wid})
        self.assertEqual((got["workflow"]["runs"]["total"], got["workflow"]["runs"]["partial"]), (1, 1))
        self.assertEqual(len(got["recent_runs"][0]["actions"]), 9)

    def test_channels_off_failure_stops_the_run_and_no_contact_skips(self):
        self.channels(False)
        wid = self.create("custom", {}, actions=[
            {"type": "send_slack_message"},
            {"type": "create_task", "title": "t"},
            {"type": "create_ticket", "subject": "s", "category": "no_such_category"},
            {"type": "schedule_meeting"}])
        out = self.s.call_ok("automate_communications", {"action": "fire", "workflow_id": wid,
                                                        "client_ids": [self.cid("x1")]})
        self.assertEqual(out["fired"][0]["outcome"], "failed")
        acts = self.runs(wid)[0]["a"]
        self.assertEqual([(a["type"], a["state"]) for a in acts],
                         [("send_slack_message", "not_configured"), ("create_task", "done"), ("create_ticket", "failed"),
                          ("schedule_meeting", "not_run")])
        self.assertIn("category", acts[2]["error"])
        self.assertEqual(self.q("SELECT count(*) FROM workflow_tasks WHERE workflow_id = '%s'" % wid), "1")  # kept
        self.assertEqual(self.q("SELECT count(*) FROM communications WHERE sent_by = 'workflow:%s'" % wid), "0")
        # x2's only contact opted out of email: e-mail and ticket are skipped, nothing done -> skipped
        wid2 = self.create("custom", {}, actions=[
            {"type": "send_email", "subject": "s", "body": "b", "sender_email": "cs@csmcp.test"},
            {"type": "create_ticket", "subject": "s"}])
        out = self.s.call_ok("automate_communications", {"action": "fire", "workflow_id": wid2,
                                                        "client_ids": [self.cid("x2")]})
        self.assertEqual(out["fired"][0]["outcome"], "skipped")
        self.assertEqual([a["state"] for a in self.runs(wid2)[0]["a"]], ["skipped", "skipped"])

    def test_delay_pending_then_executed_and_pause_cancels(self):
        wid = self.create("custom", {}, delay_minutes=30, actions=[{"type": "create_task", "title": "later"}])
        out = self.s.call_ok("automate_communications", {"action": "fire", "workflow_id": wid,
                                                        "client_ids": [self.cid("x1"), self.cid("x4")]})
        self.assertEqual([f["outcome"] for f in out["fired"]], ["pending", "pending"])
        self.assertEqual(self.q("SELECT bool_and(due_at - fired_at = interval '30 minutes') FROM workflow_runs "
                                "WHERE workflow_id = '%s'" % wid), "t")
        self.assertEqual(self.evaluate(wid)["executed"], 0)  # not due yet
        self.assertEqual(self.q("SELECT count(*) FROM workflow_tasks WHERE workflow_id = '%s'" % wid), "0")
        self.q("UPDATE workflow_runs SET due_at = now() - interval '1 second' WHERE workflow_id = '%s' AND client_id = '%s'"
               % (wid, self.cid("x1")))
        self.assertEqual(self.evaluate(wid)["executed"], 1)
        self.assertEqual([(r["c"], r["o"]) for r in self.runs(wid)], [(self.cid("x1"), "succeeded"), (self.cid("x4"), "pending")])
        self.s.call_ok("automate_communications", {"action": "pause", "workflow_id": wid})
        self.q("UPDATE workflow_runs SET due_at = now() - interval '1 second' WHERE workflow_id = '%s'" % wid)
        self.evaluate(wid)  # paused: not evaluated, but its due runs are cancelled
        self.assertEqual([(r["c"], r["o"]) for r in self.runs(wid)], [(self.cid("x1"), "succeeded"), (self.cid("x4"), "cancelled")])
        self.assertEqual(self.q("SELECT count(*) FROM workflow_tasks WHERE workflow_id = '%s'" % wid), "1")


class WorkflowMonitorProcessTest(lib.TestCase):
    """The real monitor process: its leader runs csmcp.comm_tick after each cycle."""

    def test_monitor_tick_fires_a_workflow(self):
        url = lib.database_url()
        p = du.prefix()
        du.psql(url, "INSERT INTO accounts (client_id, client_name, company_name, tier, health_score) "
                     "VALUES ('%s_m', 'Monitored', 'Monitored Ltd', 'starter', 20)" % p)
        saved = du.psql(url, "SELECT json_agg(json_build_object('name', name, 'enabled', enabled)) FROM monitors")
        du.psql(url, "UPDATE monitors SET enabled = false")
        d = lib.Csmcpd(workers=1, conf={"monitor": {"enabled": True, "tick_ms": 200}}).start()
        try:
            s = d.session()
            wid = s.call_ok("automate_communications", {
                "action": "create", "workflow_name": "Mon %s" % p, "description": "monitor",
                "trigger_type": "health_score", "trigger_conditions": {"threshold": 25, "direction": "below",
                                                                       "client_ids": ["%s_m" % p]},
                "actions": [{"type": "create_task", "title": "Rescue {{client_name}}"}]})["workflow"]["workflow_id"]
            lib.wait_until(lambda: du.psql(url, "SELECT count(*) FROM workflow_runs WHERE workflow_id = '%s' "
                                                "AND outcome = 'succeeded'" % wid) == "1", 30, what="monitor fired the workflow")
            self.assertEqual(du.psql(url, "SELECT title FROM workflow_tasks WHERE workflow_id = '%s'" % wid),
                             "Rescue Monitored")
            # the monitor's counters reach /metrics with its next heartbeat
            lib.wait_until(lambda: 'csmcp_comm_ticks_total{result="ok"}' in
                           lib.http_request(d.admin_port, "GET", "/metrics")[2].decode(), 15, what="comm tick metric")
            s.close()
        finally:
            d.stop()
            du.psql(url, "UPDATE monitors m SET enabled = (x->>'enabled')::boolean FROM json_array_elements('%s'::json) x "
                         "WHERE m.name = x->>'name'" % saved)
            du.psql(url, "DELETE FROM communication_workflows WHERE name = 'Mon %s'; DELETE FROM accounts WHERE client_id = '%s_m'"
                    % (p, p))
