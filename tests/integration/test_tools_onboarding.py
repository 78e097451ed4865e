"""Onboarding & training tools (issue 15) through csmcpd over MCP: the plan template for every
tier x complexity and its week scaling, plan/milestone/task state machines, automation triggers,
training rates and the pass rule, the certification rule, measured time to value with the
variance math, progress with its projection, the journey, the process analysis; validation
(-32602), not found, scope refusals with a read-only key, and concurrent writers. Fixtures are
inserted with a unique prefix; every expected figure is computed by hand in the comments."""
import datetime
import math
import statistics
import threading

import data_util as du
import lib
import sec_util as su

TOOLS = ["create_onboarding_plan", "activate_onboarding_automation", "update_onboarding_progress",
         "deliver_training_session", "manage_certification_program", "optimize_onboarding_process",
         "map_customer_journey", "optimize_time_to_value", "track_onboarding_progress"]
TIERS = ["starter", "standard", "professional", "enterprise"]
HOURS = {"M1": 8, "M2": 12, "M3": 16, "M4": 10, "M5": 20, "M6": 24}


def today():
    return datetime.datetime.now(datetime.timezone.utc).date()


def d(days):
    return (today() + datetime.timedelta(days=days)).isoformat()


def fixture_sql(p):
    """Accounts:
    <p>_p  progress + time to value: contract start t-40, 10 seats; usage 3 DAU on t-40..t-31,
           5 DAU on t-30..t (first day with 5*2 >= 10 seats: t-30 -> TTV 10 days; peak 5 ->
           activation 0.5); plan started t-20, target t+10, TTFV target 14, five milestones
           (2 completed, 1 blocked overdue M3, 1 in progress, 1 not started), ten tasks (4 done);
           two held sessions with 4 invitees, 2 of whom completed (attended and not failed).
    <p>_n  not reached: contract start t-25, 100 seats, 3 DAU, no plan -> 25 days so far.
    <p>_j  journey: onboarding t-100, active t-60, at_risk t-20, health 80 (t-70), 70 (t-50),
           60 (t-10), 58 (t-5); touchpoints and NPS dated in the stages.
    <p>_c, <p>_s, <p>_r  plans, certification, races (no rows)."""
    return """
DO $fx$
DECLARE t date := csmcp.today();
BEGIN
INSERT INTO accounts (client_id, client_name, company_name, tier, lifecycle_stage, created_at) VALUES
  ('{p}_p', 'Prog {p}', 'Prog Co', 'professional', 'onboarding', now() - interval '40 days'),
  ('{p}_n', 'NotYet {p}', 'NotYet Co', 'standard', 'onboarding', now() - interval '25 days'),
  ('{p}_j', 'Journey {p}', 'Journey Co', 'standard', 'at_risk', now() - interval '100 days'),
  ('{p}_c', 'Cert {p}', 'Cert Co', 'professional', 'onboarding', now()),
  ('{p}_s', 'States {p}', 'States Co', 'enterprise', 'onboarding', now()),
  ('{p}_r', 'Race {p}', 'Race Co', 'starter', 'onboarding', now());
INSERT INTO contracts (contract_id, client_id, tier, contract_value, licensed_seats, start_date, end_date) VALUES
  ('CTR-{p}_p', '{p}_p', 'professional', 10000, 10, t - 40, t + 325),
  ('CTR-{p}_n', '{p}_n', 'standard', 10000, 100, t - 25, t + 340);
INSERT INTO usage_daily (client_id, day, active_users, events)
SELECT '{p}_p', t - k, CASE WHEN k > 30 THEN 3 ELSE 5 END, 10 FROM generate_series(0, 40) k;
INSERT INTO usage_daily (client_id, day, active_users, events)
SELECT '{p}_n', t - k, 3, 10 FROM generate_series(0, 25) k;

INSERT INTO onboarding_plans (plan_id, client_id, name, product_tier, start_date, target_date, status, timeline_weeks,
                              ttfv_target_days, team_size)
VALUES ('onb_{p}_p_1', '{p}_p', 'Fixture plan', 'professional', t - 20, t + 10, 'in_progress', 4, 14, 8);
INSERT INTO onboarding_milestones (milestone_id, plan_id, seq, name, week, estimated_hours, due_date, completed_on, status,
                                   template_code, blocker)
VALUES ('onb_{p}_p_1_m1', 'onb_{p}_p_1', 1, 'Kickoff & Setup', 1, 8, t - 13, t - 14, 'completed', 'M1', NULL),
       ('onb_{p}_p_1_m2', 'onb_{p}_p_1', 2, 'Core Training', 2, 12, t - 6, t - 2, 'completed', 'M2', NULL),
       ('onb_{p}_p_1_m3', 'onb_{p}_p_1', 3, 'Integration & First Value', 2, 16, t - 3, NULL, 'blocked', 'M3', 'Firewall closed'),
       ('onb_{p}_p_1_m4', 'onb_{p}_p_1', 4, 'Optimization & Success', 3, 10, t + 5, NULL, 'in_progress', 'M4', NULL),
       ('onb_{p}_p_1_m5', 'onb_{p}_p_1', 5, 'Advanced Configuration', 4, 20, t + 15, NULL, 'not_started', 'M5', NULL);
INSERT INTO onboarding_tasks (milestone_id, title, due_date, status)
SELECT 'onb_{p}_p_1_m' || (1 + (k - 1) / 2), 'task ' || k, t, CASE WHEN k <= 4 THEN 'done' ELSE 'open' END
FROM generate_series(1, 10) k;
INSERT INTO onboarding_goals (plan_id, seq, kind, text, achieved)
VALUES ('onb_{p}_p_1', 1, 'goal', 'Go live', false), ('onb_{p}_p_1', 1, 'success_criterion', 'Ten users active', true);
INSERT INTO training_modules (module_id, name, format, certification_level, duration_minutes, passing_score) VALUES
  ('{p}_m1', 'Fixture module one', 'live_webinar', 'basic', 60, 0.80),
  ('{p}_m2', 'Fixture module two', 'video', 'basic', 30, 0.70);
INSERT INTO training_sessions (session_id, client_id, module_id, session_format, scheduled_at, duration_minutes, status)
VALUES ('train_session_8{n}1', '{p}_p', '{p}_m1', 'live_webinar', now() - interval '10 days', 60, 'completed'),
       ('train_session_8{n}2', '{p}_p', '{p}_m2', 'video', now() - interval '9 days', 30, 'completed'),
       ('train_session_8{n}3', '{p}_p', '{p}_m2', 'video', now() + interval '9 days', 30, 'scheduled');
-- u1 passed m1, u2 failed m1 (not completed), u3 attended m2 without assessment (completed),
-- u4 invited to m2, absent; u5 only invited to the future session (not counted).
INSERT INTO training_attendance (session_id, email, attended, score, passed) VALUES
  ('train_session_8{n}1', 'u1@{p}.io', true, 0.9, true), ('train_session_8{n}1', 'u2@{p}.io', true, 0.5, false),
  ('train_session_8{n}2', 'u3@{p}.io', true, NULL, NULL), ('train_session_8{n}2', 'u4@{p}.io', false, NULL, NULL),
  ('train_session_8{n}3', 'u5@{p}.io', false, NULL, NULL);

INSERT INTO lifecycle_transitions (client_id, from_stage, to_stage, reason, changed_at) VALUES
  ('{p}_j', NULL, 'onboarding', 'registered', now() - interval '100 days'),
  ('{p}_j', 'onboarding', 'active', 'onboarding completed', now() - interval '60 days'),
  ('{p}_j', 'active', 'at_risk', 'usage fell', now() - interval '20 days');
INSERT INTO communications (client_id, channel, subject, occurred_at) VALUES
  ('{p}_j', 'email', 'Welcome', now() - interval '99 days'), ('{p}_j', 'call', 'Kickoff', now() - interval '90 days'),
  ('{p}_j', 'email', 'Check-in', now() - interval '5 days');
INSERT INTO support_tickets (ticket_id, client_id, subject, description, requester_email, requester_name,
                             sla_first_response_minutes, sla_resolution_minutes, created_at)
VALUES ('TKT-8{n}1', '{p}_j', 'Slow', 'd', 'x@y.io', 'X', 60, 600, now() - interval '40 days');
INSERT INTO executive_reviews (ebr_id, client_id, ebr_type, scheduled_at) VALUES
  ('ebr_{p}_1', '{p}_j', 'quarterly', now() - interval '30 days');
INSERT INTO nps_responses (response_id, client_id, score, responded_at) VALUES
  ('NPS-{p}-1', '{p}_j', 9, now() - interval '15 days'), ('NPS-{p}-2', '{p}_j', 3, now() - interval '12 days'),
  ('NPS-{p}-3', '{p}_j', 7, now() - interval '3 days');
INSERT INTO health_scores (client_id, calculated_at, usage_score, engagement_score, support_score, satisfaction_score,
                           payment_score, overall_score, trend, risk_level, churn_probability, lookback_days)
SELECT '{p}_j', now() - make_interval(days => x.ago), x.s, x.s, x.s, x.s, x.s, x.s, 'stable', 'low', 0.2, 30
FROM (VALUES (70, 80), (50, 70), (10, 60), (5, 58)) x(ago, s);
INSERT INTO onboarding_plans (plan_id, client_id, name, product_tier, start_date, target_date, status, completed_on)
VALUES ('onb_{p}_j_1', '{p}_j', 'Journey plan', 'standard', t - 100, t - 70, 'completed', t - 65);
INSERT INTO onboarding_milestones (milestone_id, plan_id, seq, name, week, estimated_hours, due_date, completed_on, status,
                                   template_code)
VALUES ('onb_{p}_j_1_m1', 'onb_{p}_j_1', 1, 'Kickoff & Setup', 1, 8, t - 93, t - 95, 'completed', 'M1');
END $fx$;
""".format(p=p, n=str(int(p[2:], 16) % 10 ** 7).zfill(7))


class OnboardingToolsTest(lib.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.url = lib.database_url()
        cls.p = du.prefix()
        du.psql(cls.url, fixture_sql(cls.p))
        cls.d = lib.Csmcpd(workers=2).start()
        cls.s = cls.d.session()
        tools = cls.s.list_tools()
        cls.schemas = {t["name"]: t.get("outputSchema") for t in tools}

    @classmethod
    def tearDownClass(cls):
        cls.s.close()
        cls.d.stop()

    def cid(self, k):
        return "%s_%s" % (self.p, k)

    def call(self, name, args, session=None):
        out = (session or self.s).call_ok(name, args)
        errs = du.schema_errors(self.schemas[name], out)
        self.assertEqual(errs, [], "%s output does not match its outputSchema" % name)
        return out

    def fail_text(self, name, args):
        r = self.s.call_tool(name, args)
        self.assertTrue(r.get("isError"), "%s(%s) should fail: %s" % (name, args, r))
        return r["content"][0]["text"]

    def invalid(self, name, args):
        """A schema violation: on protocol 2025-11-25 an isError result naming the argument path
        (JSON-RPC -32602 on earlier revisions)."""
        try:
            r = self.s.call_tool(name, args)
        except lib.McpError as e:
            self.assertEqual(e.code, -32602, e.message)
            return e.message
        self.assertTrue(r.get("isError"), "%s(%s) should be rejected: %s" % (name, args, r))
        text = r["content"][0]["text"]
        self.assertIn("arguments", text)
        return text

    def sql(self, q):
        return du.psql(self.url, q)

    def new_account(self, k, tier="standard"):
        cid = self.cid(k)
        self.sql("INSERT INTO accounts (client_id, client_name, company_name, tier) VALUES "
                 "('%s', 'Acc %s', 'Acc Co', '%s')" % (cid, k, tier))
        return cid

    # ------------------------------------------------------------ registry

    def test_registry_lists_every_onboarding_tool(self):
        for name in TOOLS:
            self.assertIsInstance(self.schemas.get(name), dict, name)

    # ------------------------------------------------------------ create_onboarding_plan

    def test_template_for_every_tier_and_complexity(self):
        for tier in TIERS:
            for cx in ("low", "medium", "high"):
                cid = self.new_account("t%s%s" % (tier[:4], cx[:1]), tier)
                out = self.call("create_onboarding_plan", {
                    "client_id": cid, "customer_goals": ["Go live"], "product_tier": tier,
                    "technical_complexity": cx, "start_date": "2026-01-05"})
                codes = ["M1", "M2", "M3", "M4"] + (["M5"] if tier == "enterprise" else []) + \
                    (["M6"] if cx == "high" else [])
                ms = out["onboarding_plan"]["milestones"]
                self.assertEqual([m["template_code"] for m in ms], codes, (tier, cx))
                self.assertEqual([m["estimated_hours"] for m in ms], [HOURS[c] for c in codes])
                n = len(codes)
                weeks = [math.ceil(i * 4 / n) for i in range(1, n + 1)]
                # n=4: 1,2,3,4; n=5: 1,2,3,4,4; n=6: 1,2,2,3,4,4 (ceil(i*4/n))
                self.assertEqual(weeks, {4: [1, 2, 3, 4], 5: [1, 2, 3, 4, 4],
                                         6: [1, 2, 2, 3, 4, 4]}[n])
                self.assertEqual([m["week"] for m in ms], weeks)
                start = datetime.date(2026, 1, 5)
                self.assertEqual([m["due_date"] for m in ms],
                                 [(start + datetime.timedelta(days=7 * w)).isoformat() for w in weeks])
                m = out["metrics"]
                self.assertEqual(m["total_milestones"], n)
                self.assertEqual(m["total_tasks"], 3 * n)
                self.assertEqual(m["total_estimated_hours"], sum(HOURS[c] for c in codes))
                self.assertEqual(m["time_to_first_value_target_days"], weeks[2] * 7)
                self.assertEqual(m["complexity_score"], {"low": 1, "medium": 2, "high": 3}[cx])
                self.assertEqual(m["tier_complexity"], TIERS.index(tier) + 1)
                self.assertEqual(out["onboarding_plan"]["target_completion_date"], "2026-02-02")
                self.assertEqual(out["onboarding_plan"]["status"], "draft")
        # enterprise + high = 90 hours; TTFV target 14 days (M3 in week 2)
        self.assertEqual(out["metrics"]["total_estimated_hours"], 90)
        self.assertEqual(out["metrics"]["time_to_first_value_target_days"], 14)

    def test_timeline_scaling_and_persistence(self):
        cases = [(12, "starter", "low", [3, 6, 9, 12], 63), (1, "starter", "low", [1, 1, 1, 1], 7),
                 (6, "enterprise", "high", [1, 2, 3, 4, 5, 6], 21),
                 (2, "enterprise", "low", [1, 1, 2, 2, 2], 14)]
        for k, (weeks, tier, cx, exp, ttfv) in enumerate(cases):
            cid = self.new_account("sc%d" % k, tier)
            out = self.call("create_onboarding_plan", {
                "client_id": cid, "customer_goals": ["A", "B"], "success_criteria": ["C"],
                "timeline_weeks": weeks, "technical_complexity": cx, "team_size": 60})
            self.assertEqual([m["week"] for m in out["onboarding_plan"]["milestones"]], exp)
            self.assertEqual(out["metrics"]["time_to_first_value_target_days"], ttfv)
            pid = out["onboarding_plan"]["plan_id"]
            self.assertRegex(pid, r"^onb_%s_[0-9]+$" % cid)
            self.assertTrue(any("cohorts" in r for r in out["recommendations"]))
            row = self.sql("SELECT status, timeline_weeks, ttfv_target_days, team_size, product_tier, "
                           "target_date - start_date FROM onboarding_plans WHERE plan_id = '%s'" % pid)
            self.assertEqual(row, "draft|%d|%d|60|%s|%d" % (weeks, ttfv, tier, weeks * 7))
            self.assertEqual(self.sql(
                "SELECT count(*) FROM onboarding_tasks k JOIN onboarding_milestones m USING (milestone_id) "
                "WHERE m.plan_id = '%s'" % pid), str(3 * len(exp)))
            self.assertEqual(self.sql(
                "SELECT string_agg(kind || ':' || text, ',' ORDER BY kind, seq) FROM onboarding_goals "
                "WHERE plan_id = '%s'" % pid), "goal:A,goal:B,success_criterion:C")
            self.assertEqual(self.sql("SELECT count(*) FROM activity_log WHERE entity_id = '%s' AND "
                                      "action = 'create_onboarding_plan' AND old_values IS NULL" % pid), "1")
        # default tier: the account's own
        cid = self.new_account("deft", "starter")
        out = self.call("create_onboarding_plan", {"client_id": cid, "customer_goals": ["x"]})
        self.assertEqual(out["onboarding_plan"]["product_tier"], "starter")
        self.assertEqual(out["onboarding_plan"]["start_date"], today().isoformat())

    def test_create_validation_and_refusals(self):
        cid = self.new_account("cv")
        self.invalid("create_onboarding_plan", {"client_id": cid})
        self.invalid("create_onboarding_plan", {"client_id": cid, "customer_goals": []})
        self.invalid("create_onboarding_plan", {"client_id": cid, "customer_goals": ["x"], "timeline_weeks": 13})
        self.invalid("create_onboarding_plan", {"client_id": cid, "customer_goals": ["x"], "team_size": 0})
        self.invalid("create_onboarding_plan", {"client_id": cid, "customer_goals": ["x"], "product_tier": "gold"})
        self.invalid("create_onboarding_plan", {"client_id": cid, "customer_goals": ["x"], "technical_complexity": "x"})
        self.invalid("create_onboarding_plan", {"client_id": cid, "customer_goals": ["x"], "bogus": 1})
        self.invalid("create_onboarding_plan", {"client_id": "../x", "customer_goals": ["x"]})
        self.assertIn("client not found: %s_nope" % self.p, self.fail_text(
            "create_onboarding_plan", {"client_id": self.cid("nope"), "customer_goals": ["x"]}))
        self.assertIn("within one year", self.fail_text(
            "create_onboarding_plan", {"client_id": cid, "customer_goals": ["x"], "start_date": "2020-01-01"}))
        first = self.call("create_onboarding_plan", {"client_id": cid, "customer_goals": ["x"]})
        pid = first["onboarding_plan"]["plan_id"]
        msg = self.fail_text("create_onboarding_plan", {"client_id": cid, "customer_goals": ["y"]})
        self.assertIn("already has an open onboarding plan %s (status draft)" % pid, msg)
        # cancelled: a new plan is allowed
        self.call("update_onboarding_progress", {"client_id": cid, "plan_id": pid, "plan_status": "cancelled",
                                                 "reason": "wrong template"})
        self.call("create_onboarding_plan", {"client_id": cid, "customer_goals": ["y"]})
        self.assertEqual(self.sql("SELECT cancelled_on = csmcp.today() AND status_reason = 'wrong template' "
                                  "FROM onboarding_plans WHERE plan_id = '%s'" % pid), "t")

    def test_concurrent_creates_make_one_plan(self):
        cid = self.cid("r")
        results = []
        lock = threading.Lock()

        def create():
            s = self.d.session()
            try:
                r = s.call_tool("create_onboarding_plan", {"client_id": cid, "customer_goals": ["race"]})
                with lock:
                    results.append(r)
            finally:
                s.close()

        threads = [threading.Thread(target=create) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        ok = [r for r in results if not r.get("isError")]
        bad = [r for r in results if r.get("isError")]
        self.assertEqual((len(ok), len(bad)), (1, 5), results)
        for r in bad:
            self.assertIn("already has an open onboarding plan", r["content"][0]["text"])
        self.assertEqual(self.sql("SELECT count(*) FROM onboarding_plans WHERE client_id = '%s'" % cid), "1")

    # ------------------------------------------------------------ state machines + automation

    def test_plan_and_milestone_state_machine(self):
        cid = self.cid("s")
        out = self.call("create_onboarding_plan", {"client_id": cid, "customer_goals": ["x"]})
        pid = out["onboarding_plan"]["plan_id"]
        m = lambda i: "%s_m%d" % (pid, i)  # noqa: E731
        up = lambda **kw: self.call("update_onboarding_progress", dict(client_id=cid, plan_id=pid, **kw))  # noqa: E731
        upf = lambda **kw: self.fail_text("update_onboarding_progress", dict(client_id=cid, plan_id=pid, **kw))  # noqa: E731
        self.assertIn("is draft: milestones change only while the plan is in_progress or delayed (activate it first",
                      upf(milestone_id=m(1), milestone_status="in_progress"))
        self.assertIn("plan %s is draft: cannot move to completed; allowed from draft: scheduled, in_progress, cancelled"
                      % pid, upf(plan_status="completed"))
        up(plan_status="scheduled")
        act = self.call("activate_onboarding_automation", {"client_id": cid, "plan_id": pid})
        self.assertEqual(act["plan_status"], {"previous": "scheduled", "current": "in_progress"})
        self.assertEqual(act["registered_trigger_count"], 7)
        st = self.sql("SELECT status || '|' || started_on FROM onboarding_milestones WHERE milestone_id = '%s'" % m(1))
        self.assertEqual(st, "in_progress|%s" % today().isoformat())
        self.assertIn("milestone %s is not_started: cannot move to completed; allowed from not_started: "
                      "in_progress, blocked, skipped" % m(2), upf(milestone_id=m(2), milestone_status="completed"))
        self.assertIn("blocker: say what blocks it", upf(milestone_id=m(2), milestone_status="blocked"))
        self.invalid("update_onboarding_progress", {"client_id": cid, "plan_id": pid, "milestone_id": m(2)})
        self.invalid("update_onboarding_progress", {"client_id": cid, "plan_id": pid, "milestone_status": "done"})
        self.assertIn("milestone %s_m9 not found in onboarding plan %s" % (pid, pid),
                      upf(milestone_id=m(9), milestone_status="in_progress"))
        self.assertIn("onboarding plan onb_%s_1 not found for client %s" % (cid, cid), self.fail_text(
            "update_onboarding_progress", {"client_id": cid, "plan_id": "onb_%s_1" % cid, "plan_status": "cancelled"}))
        self.assertIn("nothing to update", upf())
        r = up(milestone_id=m(1), milestone_status="completed")
        self.assertEqual(r["changes"][0]["tasks_closed"], 3)
        self.assertIn("allowed from completed: none (final state)", upf(milestone_id=m(1), milestone_status="in_progress"))
        up(milestone_id=m(2), milestone_status="blocked", blocker="waiting for IT")
        self.assertEqual(self.sql("SELECT blocker FROM onboarding_milestones WHERE milestone_id = '%s'" % m(2)), "waiting for IT")
        self.assertIn("allowed from blocked: in_progress, skipped", upf(milestone_id=m(2), milestone_status="completed"))
        up(milestone_id=m(2), milestone_status="in_progress")
        up(plan_status="delayed", reason="IT delay")
        self.assertIn("cannot be completed: milestones not completed or skipped: %s (in_progress), %s (not_started)"
                      % (m(2), m(3)), upf(plan_status="completed"))
        tid = int(self.sql("SELECT min(task_id) FROM onboarding_tasks WHERE milestone_id = '%s'" % m(3)))
        up(task_id=tid, task_status="blocked", blocker="no sandbox")
        tr = self.call("track_onboarding_progress", {"client_id": cid})
        self.assertEqual([(b["task_id"], b["blocker"]) for b in tr["blockers"]], [(tid, "no sandbox")])
        self.assertEqual(tr["tasks_summary"]["blocked"], 1)
        self.assertIn("task %d is blocked: cannot move to blocked" % tid, upf(task_id=tid, task_status="blocked",
                                                                             blocker="x"))
        up(task_id=tid, task_status="done")
        self.assertEqual(self.sql("SELECT status || '|' || coalesce(blocker, '-') FROM onboarding_tasks WHERE task_id = %d" % tid),
                         "done|-")
        self.assertIn("allowed from done: none (final state)", upf(task_id=tid, task_status="open"))
        up(milestone_id=m(2), milestone_status="completed")
        up(milestone_id=m(3), milestone_status="skipped")
        up(milestone_id=m(4), milestone_status="in_progress")
        # enterprise: M5 exists; completing M4 leaves M5 -> plan not completed yet
        r = up(milestone_id=m(4), milestone_status="completed")
        self.assertEqual(r["plan_status"], "delayed")
        up(milestone_id=m(5), milestone_status="in_progress")
        r = up(milestone_id=m(5), milestone_status="completed")
        self.assertEqual(r["plan_status"], "completed")
        self.assertEqual(r["changes"][-1], {"entity": "plan", "id": pid, "from": "delayed", "to": "completed",
                                            "automatic": True})
        self.assertEqual(self.sql("SELECT completed_on = csmcp.today() FROM onboarding_plans WHERE plan_id = '%s'" % pid), "t")
        self.assertIn("plan %s is completed: cannot move to in_progress; allowed from completed: none (final state)" % pid,
                      upf(plan_status="in_progress"))
        self.assertIn("is completed; automation can be activated for plans in draft, scheduled, in_progress or delayed",
                      self.fail_text("activate_onboarding_automation", {"client_id": cid, "plan_id": pid}))
        # every transition logged with old and new values
        self.assertEqual(self.sql(
            "SELECT old_values ->> 'status' || '>' || (new_values ->> 'status') FROM activity_log "
            "WHERE entity = 'onboarding_milestone' AND entity_id = '%s' ORDER BY activity_id" % m(2)).split("\n"),
            ["not_started>blocked", "blocked>in_progress", "in_progress>completed"])

    def test_concurrent_last_milestones_complete_the_plan(self):
        cid = self.new_account("cc")
        pid = self.call("create_onboarding_plan", {"client_id": cid, "customer_goals": ["x"]})["onboarding_plan"]["plan_id"]
        self.call("activate_onboarding_automation", {"client_id": cid, "plan_id": pid})
        self.sql("UPDATE onboarding_milestones SET status = 'in_progress' WHERE plan_id = '%s'" % pid)
        self.call("update_onboarding_progress", {"client_id": cid, "plan_id": pid, "milestone_id": pid + "_m1",
                                                 "milestone_status": "completed"})
        self.call("update_onboarding_progress", {"client_id": cid, "plan_id": pid, "milestone_id": pid + "_m2",
                                                 "milestone_status": "completed"})
        results = []

        def done(i):
            s = self.d.session()
            try:
                results.append(s.call_tool("update_onboarding_progress", {
                    "client_id": cid, "plan_id": pid, "milestone_id": "%s_m%d" % (pid, i),
                    "milestone_status": "completed"}))
            finally:
                s.close()

        threads = [threading.Thread(target=done, args=(i,)) for i in (3, 4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertFalse(any(r.get("isError") for r in results), results)
        self.assertEqual(sorted(r["structuredContent"]["plan_status"] for r in results), ["completed", "in_progress"])
        # completed: the time to value measured then is stored (no contract: start = creation today,
        # M3 completed today -> 0 days)
        self.assertEqual(self.sql("SELECT status || '|' || ttv_days || '|' || ttv_reached FROM onboarding_plans "
                                  "WHERE plan_id = '%s'" % pid), "completed|0|true")
        # the M3 completion refreshed the standard tier's benchmark: it counts every completed M3 of the tier
        self.assertEqual(self.sql("SELECT plans FROM onboarding_ttv_benchmarks WHERE product_tier = 'standard'"),
                         self.sql("SELECT count(*) FROM onboarding_milestones m JOIN onboarding_plans p USING (plan_id) "
                                  "WHERE m.template_code = 'M3' AND m.status = 'completed' AND p.product_tier = 'standard'"))

    def test_automation_triggers_registered_with_monitors(self):
        cid = self.new_account("au")
        pid = self.call("create_onboarding_plan", {"client_id": cid, "customer_goals": ["x"]})["onboarding_plan"]["plan_id"]
        out = self.call("activate_onboarding_automation", {
            "client_id": cid, "plan_id": pid, "automation_triggers": ["task_overdue", "health_score_change"],
            "notification_preferences": {"slack": True, "digest": "weekly"}})
        enabled = dict(x.split("|") for x in self.sql("SELECT name, enabled FROM monitors").split("\n"))
        onb = "onboarding_progress" if "onboarding_progress" in enabled else "onboarding_monitor"
        self.assertEqual([(t["trigger"], t["monitor"]) for t in out["triggers"]],
                         [("health_score_change", "churn_risk_monitor"), ("task_overdue", onb)])
        for t in out["triggers"]:
            self.assertEqual(t["monitor_enabled"], enabled[t["monitor"]] == "t")
            self.assertEqual(t["state"], "active" if t["monitor_enabled"] else "registered (monitor disabled)")
        self.assertEqual(out["active_trigger_count"], sum(t["monitor_enabled"] for t in out["triggers"]))
        self.assertEqual(out["automation_config"]["notification_preferences"],
                         {"email": True, "slack": True, "in_app": True, "frequency": "immediate", "digest": "weekly"})
        self.assertEqual(self.sql("SELECT string_agg(trigger_type || '>' || monitor, ',' ORDER BY trigger_type) FROM "
                                  "onboarding_automation_triggers WHERE plan_id = '%s'" % pid),
                         "health_score_change>churn_risk_monitor,task_overdue>" + onb)
        # again with another set: replaced, plan stays in_progress, old and new logged
        out = self.call("activate_onboarding_automation", {"client_id": cid, "plan_id": pid,
                                                           "automation_triggers": ["blocker_identified"]})
        self.assertEqual(out["plan_status"], {"previous": "in_progress", "current": "in_progress"})
        self.assertEqual(self.sql("SELECT string_agg(trigger_type, ',') FROM onboarding_automation_triggers "
                                  "WHERE plan_id = '%s'" % pid), "blocker_identified")
        self.assertEqual(self.sql(
            "SELECT (old_values ->> 'triggers') || '>' || (new_values ->> 'triggers') FROM activity_log WHERE "
            "entity_id = '%s' AND action = 'activate_onboarding_automation' ORDER BY activity_id DESC LIMIT 1" % pid),
            '["health_score_change", "task_overdue"]>["blocker_identified"]')
        self.invalid("activate_onboarding_automation", {"client_id": cid, "plan_id": pid, "automation_triggers": ["x"]})
        self.invalid("activate_onboarding_automation", {"client_id": cid, "plan_id": "plan-1"})
        self.invalid("activate_onboarding_automation", {"client_id": cid, "plan_id": pid,
                                                        "notification_preferences": {"pager": True}})

    # ------------------------------------------------------------ training

    def test_training_session_rates_and_pass_rule(self):
        cid = self.new_account("tr")
        out = self.call("deliver_training_session", {
            "client_id": cid, "training_module_id": self.p + "_m1", "session_date": d(-1) + " 14:30",
            "duration_minutes": 60, "session_format": "workshop", "attendee_emails": ["F@x.io", "a@x.io"],
            "attendees": [
                {"email": "a@x.io", "assessment_score": 0.9, "rating": 5, "engagement": 0.9},
                {"email": "b@x.io", "assessment_score": 0.8, "rating": 4, "engagement": 0.6},
                {"email": "c@x.io", "assessment_score": 0.79, "rating": 3, "engagement": 0.7},
                {"email": "d@x.io", "rating": 4.5},
                {"email": "e@x.io", "attended": False}]})
        # invited 6 (a..f), attended 4, assessed 3, passed 2 (0.8 >= 0.80 passes, 0.79 fails)
        # attendance 4/6 = 0.667; completion 3/4 = 0.75; pass 2/3 = 0.667; mean score
        # (0.9+0.8+0.79)/3 = 0.83; mean rating 16.5/4 = 4.125 -> 4.13; engagement 2.2/3 -> 0.733
        self.assertEqual(out["session_metrics"], {
            "invited": 6, "attended": 4, "assessed": 3, "passed": 2, "attendance_rate": 0.667,
            "completion_rate": 0.75, "pass_rate": 0.667, "average_score": 0.83, "average_rating": 4.13,
            "average_engagement": 0.733, "effectiveness": "medium"})
        self.assertEqual({a["email"]: a["passed"] for a in out["attendees"]},
                         {"a@x.io": True, "b@x.io": True, "c@x.io": False, "d@x.io": None, "e@x.io": None,
                          "f@x.io": None})
        recs = out["recommendations"]
        self.assertEqual(len(recs), 2, recs)
        self.assertTrue(recs[0].startswith("Attendance 0.667 is below 0.8"))
        self.assertTrue(recs[1].startswith("Pass rate 0.667 is below 0.85"))
        ts = out["training_session"]
        self.assertRegex(ts["session_id"], r"^train_session_[0-9]+$")
        self.assertEqual((ts["status"], ts["session_date"], ts["session_format"]),
                         ("completed", d(-1) + "T14:30:00Z", "workshop"))
        # thresholds: attendance exactly 0.8 and pass 1.0 are fine; engagement 0.69 and rating 3.9 are flagged
        out = self.call("deliver_training_session", {
            "client_id": cid, "training_module_id": self.p + "_m2", "attendee_emails": ["v@x.io"],
            "attendees": [{"email": "%s@x.io" % u, "assessment_score": 0.7, "rating": r, "engagement": e}
                          for u, r, e in (("p", 3.9, 0.69), ("q", 3.9, 0.69), ("r", 3.9, 0.69), ("s", 3.9, 0.69))]})
        m = out["session_metrics"]
        self.assertEqual((m["attendance_rate"], m["pass_rate"], m["average_engagement"], m["average_rating"],
                          m["effectiveness"]), (0.8, 1, 0.69, 3.9, "low"))
        self.assertEqual([r.split(" ")[0] for r in out["recommendations"]], ["Engagement", "Mean"])
        # scheduled in the future: no rates, results refused until it has taken place
        fut = self.call("deliver_training_session", {
            "client_id": cid, "training_module_id": self.p + "_m1", "session_date": d(3) + " 09:00",
            "attendee_emails": ["a@x.io"]})
        self.assertEqual((fut["training_session"]["status"], fut["session_metrics"]["attendance_rate"]),
                         ("scheduled", None))
        sid = fut["training_session"]["session_id"]
        self.assertIn("results can be recorded once it has taken place", self.fail_text("deliver_training_session", {
            "client_id": cid, "training_module_id": self.p + "_m1", "session_id": sid,
            "attendees": [{"email": "a@x.io", "assessment_score": 1}]}))
        self.assertIn("session %s is a session of module %s_m1" % (sid, self.p), self.fail_text(
            "deliver_training_session", {"client_id": cid, "training_module_id": self.p + "_m2", "session_id": sid}))
        self.assertIn("training session train_session_1 not found for client %s" % cid, self.fail_text(
            "deliver_training_session", {"client_id": cid, "training_module_id": self.p + "_m1",
                                         "session_id": "train_session_1"}))
        self.assertIn("training module %s_zz not found in the catalogue" % self.p, self.fail_text(
            "deliver_training_session", {"client_id": cid, "training_module_id": self.p + "_zz"}))
        self.assertIn("e@x.io did not attend, so has no score", self.fail_text("deliver_training_session", {
            "client_id": cid, "training_module_id": self.p + "_m1",
            "attendees": [{"email": "e@x.io", "attended": False, "rating": 2}]}))
        self.assertIn("listed twice", self.fail_text("deliver_training_session", {
            "client_id": cid, "training_module_id": self.p + "_m1",
            "attendees": [{"email": "e@x.io"}, {"email": "E@x.io"}]}))
        self.invalid("deliver_training_session", {"client_id": cid, "training_module_id": self.p + "_m1",
                                                  "attendees": [{"email": "a@x.io", "assessment_score": 1.5}]})
        self.invalid("deliver_training_session", {"client_id": cid, "training_module_id": self.p + "_m1",
                                                  "attendee_emails": ["not-an-email"]})
        self.invalid("deliver_training_session", {"client_id": cid, "training_module_id": self.p + "_m1",
                                                  "duration_minutes": 10})
        self.invalid("deliver_training_session", {"client_id": cid, "training_module_id": self.p + "_m1",
                                                  "session_date": "tomorrow"})

    # ------------------------------------------------------------ certification

    def test_certification_rule_history_and_rate(self):
        cid = self.cid("c")
        mc = lambda **kw: self.call("manage_certification_program", dict(client_id=cid, **kw))  # noqa: E731
        mcf = lambda **kw: self.fail_text("manage_certification_program", dict(client_id=cid, **kw))  # noqa: E731
        out = mc(action="create", certification_level="advanced", module_ids=[self.p + "_m1", self.p + "_m2"])
        self.assertEqual([m["module_id"] for m in out["result"]["required_modules"]], [self.p + "_m1", self.p + "_m2"])
        self.assertIn("already has a advanced certification program", mcf(action="create", certification_level="advanced"))
        self.assertIn("training module(s) not found in the catalogue: %s_zz" % self.p,
                      mcf(action="create", certification_level="expert", module_ids=[self.p + "_zz"]))
        self.assertIn("certification_level is required for action create", mcf(action="create"))
        # ann passes m1 (0.85 >= 0.80) but only reaches 0.65 < 0.70 in m2; bob passes both; cy attends m1 only
        self.call("deliver_training_session", {"client_id": cid, "training_module_id": self.p + "_m1", "attendees": [
            {"email": "ann@x.io", "assessment_score": 0.85}, {"email": "bob@x.io", "assessment_score": 0.8},
            {"email": "cy@x.io"}]})
        self.call("deliver_training_session", {"client_id": cid, "training_module_id": self.p + "_m2", "attendees": [
            {"email": "ann@x.io", "assessment_score": 0.65}, {"email": "bob@x.io", "assessment_score": 0.7}]})
        self.assertIn("ann@x.io has not passed every advanced module: %s_m2 (best score 0.650 < 0.70)" % self.p,
                      mcf(action="issue", certification_level="advanced", user_email="ann@x.io"))
        self.assertIn("cy@x.io has not passed every advanced module: %s_m1 (no assessed attendance), %s_m2 (no "
                      "assessed attendance)" % (self.p, self.p),
                      mcf(action="issue", certification_level="advanced", user_email="cy@x.io"))
        out = mc(action="issue", certification_level="advanced", user_email="Bob@x.io")
        cert = out["result"]
        self.assertRegex(cert["certification_id"], r"^cert_advanced_bob_x_io_[0-9]+$")
        self.assertEqual((cert["status"], cert["user_email"]), ("active", "bob@x.io"))
        self.assertEqual(sorted((e["module_id"], e["best_score"]) for e in cert["evidence"]),
                         [(self.p + "_m1", 0.8), (self.p + "_m2", 0.7)])
        self.assertIn("bob@x.io already holds an active advanced certification (%s)" % cert["certification_id"],
                      mcf(action="issue", certification_level="advanced", user_email="bob@x.io"))
        # track: trained = ann, bob, cy (attended) = 3; certified = bob -> 1/3 = 0.333 (< 0.5)
        tr = mc(action="track")
        self.assertEqual((tr["result"]["trained_users"], tr["result"]["certified_users"],
                          tr["result"]["certification_rate"]), (3, 1, 0.333))
        self.assertTrue(tr["recommendations"][0].startswith("Certification rate 0.333 is below 0.5"))
        # a second sitting lifts ann over 0.70 in m2: now she can be certified -> 2/3
        self.call("deliver_training_session", {"client_id": cid, "training_module_id": self.p + "_m2", "attendees": [
            {"email": "ann@x.io", "assessment_score": 0.75}]})
        mc(action="issue", certification_level="advanced", user_email="ann@x.io")
        self.assertEqual(mc(action="track")["result"]["certification_rate"], 0.667)
        # revoke keeps history; revoking again is refused; a new certification can follow
        rv = mc(action="revoke", certification_id=cert["certification_id"], reason="left the company")
        self.assertEqual((rv["result"]["status"], rv["result"]["revoke_reason"]), ("revoked", "left the company"))
        self.assertIn("certification %s was already revoked on %s" % (cert["certification_id"], today().isoformat()),
                      mcf(action="revoke", certification_id=cert["certification_id"]))
        self.assertIn("no active advanced certification for bob@x.io",
                      mcf(action="revoke", certification_level="advanced", user_email="bob@x.io"))
        self.assertEqual(mc(action="track")["result"]["certification_rate"], 0.333)
        lst = mc(action="list", certification_level="advanced")
        self.assertEqual(sorted((c["user_email"], c["status"]) for c in lst["result"]["certifications"]),
                         [("ann@x.io", "active"), ("bob@x.io", "revoked")])
        self.assertEqual(lst["result"]["total_certifications"], 2)
        one = mc(action="list", certification_level="advanced", limit=1)["result"]
        self.assertEqual((one["total_certifications"], [c["user_email"] for c in one["certifications"]]), (2, ["ann@x.io"]))
        self.assertEqual(lst["result"]["programs"], [{"level": "advanced", "source": "program",
                                                      "required_modules": [self.p + "_m1", self.p + "_m2"]}])
        self.assertIn("certification cert_basic_nobody_1 not found for client %s" % cid,
                      mcf(action="revoke", certification_id="cert_basic_nobody_1"))
        self.invalid("manage_certification_program", {"client_id": cid, "action": "grant"})
        self.invalid("manage_certification_program", {"client_id": cid, "action": "revoke", "certification_id": "x1"})
        self.assertEqual(self.sql("SELECT count(*) FROM activity_log WHERE client_id = '%s' AND action LIKE "
                                  "'manage_certification_program.%%'" % cid), "4")

    def test_concurrent_issue_makes_one_certification(self):
        cid = self.new_account("ci")
        self.call("manage_certification_program", {"client_id": cid, "action": "create",
                                                   "certification_level": "expert", "module_ids": [self.p + "_m2"]})
        self.call("deliver_training_session", {"client_id": cid, "training_module_id": self.p + "_m2",
                                               "attendees": [{"email": "z@x.io", "assessment_score": 1}]})
        results = []

        def issue():
            s = self.d.session()
            try:
                results.append(s.call_tool("manage_certification_program", {
                    "client_id": cid, "action": "issue", "certification_level": "expert", "user_email": "z@x.io"}))
            finally:
                s.close()

        threads = [threading.Thread(target=issue) for _ in range(5)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(sum(not r.get("isError") for r in results), 1, results)
        for r in results:
            if r.get("isError"):
                self.assertIn("already holds an active expert certification", r["content"][0]["text"])
        self.assertEqual(self.sql("SELECT count(*) FROM certifications WHERE client_id = '%s'" % cid), "1")

    # ------------------------------------------------------------ progress, TTV

    def test_progress_exact(self):
        out = self.call("track_onboarding_progress", {"client_id": self.cid("p")})
        pr = out["progress_report"]
        # 2 of 5 milestones completed -> 0.4 (40.0 %); 4 of 10 tasks done -> 0.4
        self.assertEqual((pr["plan_id"], pr["completion_rate"], pr["completion_percentage"], pr["task_completion_rate"],
                          pr["days_elapsed"], pr["days_remaining_to_target"]),
                         ("onb_%s_p_1" % self.p, 0.4, 40.0, 0.4, 20, 10))
        self.assertEqual(out["milestones_summary"], {"total": 5, "completed": 2, "in_progress": 1, "not_started": 1,
                                                     "blocked": 1, "skipped": 0, "completed_on_time": 1,
                                                     "completion_rate": 0.4})
        self.assertEqual(out["overdue_milestones"], [{"milestone_id": "onb_%s_p_1_m3" % self.p,
                                                      "name": "Integration & First Value", "status": "blocked",
                                                      "due_date": d(-3), "days_overdue": 3}])
        self.assertEqual(out["blockers"], [{"milestone_id": "onb_%s_p_1_m3" % self.p, "name": "Integration & First Value",
                                            "task_id": None, "blocker": "Firewall closed"}])
        # held sessions: u1..u4 invited; completed u1 (passed) and u3 (attended, no assessment) -> 0.5
        self.assertEqual(out["training_metrics"], {"sessions_held": 2, "users_invited": 4, "users_attended": 3,
                                                   "users_completed": 2, "training_completion_rate": 0.5})
        self.assertEqual(out["engagement_metrics"], {"licensed_seats": 10, "peak_daily_active_users_30d": 5,
                                                     "activation_rate": 0.5})
        # pace 2 milestones / 20 days = 0.1 per day; 3 remaining -> ceil(30) days -> t+30, 20 past target t+10
        self.assertEqual(out["projection"]["projected_completion_date"], d(30))
        self.assertEqual((out["projection"]["milestones_per_day"], out["projection"]["on_track"]), (0.1, False))
        self.assertEqual({r["risk"]: (r["severity"], r["value"]) for r in out["risks"]}, {
            "low_training_completion": ("medium", 0.5), "low_activation": ("medium", 0.5),
            "overdue_milestones": ("medium", 1), "blocked_milestones": ("high", 1), "projected_late": ("high", 20)})
        self.assertEqual(out["team_metrics"]["trained_share_of_team"], 0.25)  # 2 of team 8
        self.assertEqual(len(out["success_criteria_status"]), 2)
        out = self.call("track_onboarding_progress", {"client_id": self.cid("p"), "include_risk_analysis": False,
                                                      "include_team_metrics": False})
        self.assertEqual((out["risks"], out["team_metrics"]), (None, None))
        self.assertIn("client %s has no onboarding plan" % self.cid("n"),
                      self.fail_text("track_onboarding_progress", {"client_id": self.cid("n")}))
        self.assertIn("onboarding plan onb_%s_j_1 not found for client %s" % (self.p, self.cid("p")),
                      self.fail_text("track_onboarding_progress", {"client_id": self.cid("p"),
                                                                   "plan_id": "onb_%s_j_1" % self.p}))
        self.invalid("track_onboarding_progress", {"client_id": self.cid("p"), "plan_id": "x"})

    def test_time_to_value_measured_and_variance(self):
        out = self.call("optimize_time_to_value", {"client_id": self.cid("p")})
        m = out["measurement"]
        # contract start t-40, first day with 5 of 10 seats active t-30 -> 10 days; M3 not completed
        self.assertEqual((m["start_date"], m["value_date"], m["ttv_days"], m["reached"], m["value_basis"]),
                         (d(-40), d(-30), 10, True, "usage >= 50% of seats"))
        a = out["ttv_analysis"]
        # target from the plan (14): variance -4, -4/14*100 = -28.57 -> -28.6, on_target
        self.assertEqual((a["current_time_to_value_days"], a["target_time_to_value_days"], a["variance_days"],
                          a["variance_percentage"], a["status"]), (10, 14, -4, -28.6, "on_target"))
        a = self.call("optimize_time_to_value", {"client_id": self.cid("p"), "target_time_to_value_days": 7})["ttv_analysis"]
        self.assertEqual((a["variance_days"], a["variance_percentage"], a["status"]), (3, 42.9, "above_target"))
        a = self.call("optimize_time_to_value", {"client_id": self.cid("p"), "target_time_to_value_days": 10})["ttv_analysis"]
        self.assertEqual((a["variance_days"], a["variance_percentage"], a["status"]), (0, 0, "on_target"))
        a = self.call("optimize_time_to_value", {"client_id": self.cid("p"), "current_time_to_value_days": 30,
                                                 "target_time_to_value_days": 21})["ttv_analysis"]
        self.assertEqual((a["variance_days"], a["variance_percentage"], a["status"]), (9, 42.9, "above_target"))
        # not reached: 3 of 100 seats, no plan: 25 days so far against the default 21 -> +4, 19.0 %
        out = self.call("optimize_time_to_value", {"client_id": self.cid("n"), "include_benchmarks": False})
        a = out["ttv_analysis"]
        self.assertEqual((a["current_time_to_value_days"], a["target_time_to_value_days"], a["variance_days"],
                          a["variance_percentage"], a["status"], a["value_reached"], a["target_source"]),
                         (25, 21, 4, 19.0, "not_reached_over_target", False, "default (21 days)"))
        self.assertIsNone(out["benchmarks"])
        self.invalid("optimize_time_to_value", {"client_id": self.cid("p"), "target_time_to_value_days": 0})
        self.assertIn("client not found", self.fail_text("optimize_time_to_value", {"client_id": self.cid("zz")}))

    def test_time_to_value_m3_first(self):
        cid = self.new_account("m3")
        self.sql("""INSERT INTO contracts (contract_id, client_id, tier, contract_value, licensed_seats, start_date, end_date)
                    VALUES ('CTR-{c}', '{c}', 'standard', 1, 4, csmcp.today() - 30, csmcp.today() + 300);
                    INSERT INTO usage_daily (client_id, day, active_users) VALUES ('{c}', csmcp.today() - 10, 2);
                    INSERT INTO onboarding_plans (plan_id, client_id, name, product_tier, start_date, target_date, status)
                    VALUES ('onb_{c}_1', '{c}', 'p', 'standard', csmcp.today() - 30, csmcp.today(), 'in_progress');
                    INSERT INTO onboarding_milestones (milestone_id, plan_id, seq, name, week, estimated_hours, due_date,
                                                       completed_on, status, template_code)
                    VALUES ('onb_{c}_1_m3', 'onb_{c}_1', 3, 'Integration & First Value', 3, 16, csmcp.today() - 9,
                            csmcp.today() - 12, 'completed', 'M3')""".format(c=cid))
        m = self.call("optimize_time_to_value", {"client_id": cid})["measurement"]
        # usage day t-10 (2*2 >= 4), M3 completed t-12 -> value date t-12, 18 days after t-30
        self.assertEqual((m["value_date"], m["ttv_days"], m["value_basis"], m["first_half_seats_active_day"]),
                         (d(-12), 18, "M3 milestone completed", d(-10)))

    # ------------------------------------------------------------ journey

    def test_customer_journey_exact(self):
        out = self.call("map_customer_journey", {"client_id": self.cid("j")})
        st = out["journey_stages"]
        self.assertEqual([(s["journey_stage"], s["lifecycle_stage"], s["duration_days"], s["current"]) for s in st],
                         [("onboarding", "onboarding", 40, False), ("adoption", "active", 40, False),
                          ("adoption", "at_risk", 20, True)])
        self.assertEqual([s["touchpoints"]["communications"] for s in st], [2, 0, 1])
        self.assertEqual(st[0]["touchpoints"]["communications_by_channel"], {"email": 1, "call": 1})
        self.assertEqual([s["touchpoints"]["tickets_opened"] for s in st], [0, 1, 0])
        self.assertEqual([s["touchpoints"]["executive_reviews"] for s in st], [0, 1, 0])
        self.assertEqual([[m["name"] for m in s["milestones"]] for s in st], [["Kickoff & Setup"], [], []])
        self.assertTrue(st[0]["milestones"][0]["on_time"])
        x = [s["experience_metrics"] for s in st]
        # at_risk: NPS 9, 3, 7 -> (1 - 1) / 3 = 0; health at entry = last score at or before t-20 (70, t-50)
        self.assertEqual((x[2]["nps_responses"], x[2]["nps"], x[2]["health_at_entry"], x[2]["health_at_exit"]),
                         (3, 0, 70, 58))
        self.assertEqual((x[1]["health_at_entry"], x[1]["health_at_exit"], x[0]["health_at_entry"]), (80, 70, None))
        # drops: 80 -> 70 at t-50 (active), 70 -> 60 at t-10 (at_risk); 60 -> 58 is under 5 points
        self.assertEqual([(p["lifecycle_stage"], p["previous_score"], p["score"], p["change"])
                          for p in out["intervention_points"]], [("active", 80, 70, -10), ("at_risk", 70, 60, -10)])
        self.assertEqual([s["intervention_points"] for s in st], [0, 1, 1])
        self.assertEqual([o["opportunity"] for o in out["optimization_opportunities"]], ["add_touchpoints"])
        only = self.call("map_customer_journey", {"client_id": self.cid("j"), "journey_stage": "adoption",
                                                  "include_touchpoints": False, "include_experience_metrics": False})
        self.assertEqual([s["lifecycle_stage"] for s in only["journey_stages"]], ["active", "at_risk"])
        self.assertEqual((only["journey_stages"][0]["touchpoints"], only["journey_stages"][0]["experience_metrics"]),
                         (None, None))
        self.invalid("map_customer_journey", {"client_id": self.cid("j"), "journey_stage": "churn"})

    # ------------------------------------------------------------ process analysis

    def test_process_analysis_against_the_rows(self):
        base = self.call("optimize_onboarding_process", {"analysis_period_days": 30, "min_completed_onboardings": 100000})
        n = base["analysis_data"]["completed_plans"]
        self.assertEqual(base["status"], "insufficient_data")
        self.assertEqual(base["summary"], "Not enough data: %d onboarding plan(s) completed in the last 30 days, "
                                          "100000 needed (min_completed_onboardings)." % n)
        self.assertEqual(n, int(self.sql("SELECT count(*) FROM onboarding_plans WHERE status = 'completed' AND "
                                         "completed_on > csmcp.today() - 30 AND completed_on <= csmcp.today()")))
        out = self.call("optimize_onboarding_process", {"analysis_period_days": 30, "min_completed_onboardings": 1})
        if n == 0:
            self.assertEqual(out["status"], "insufficient_data")
            return
        rows = self.sql("SELECT p.plan_id, p.completed_on <= p.target_date, m.template_code, m.completed_on - m.due_date "
                        "FROM onboarding_plans p JOIN onboarding_milestones m USING (plan_id) WHERE p.status = 'completed' "
                        "AND p.completed_on > csmcp.today() - 30 AND p.completed_on <= csmcp.today() "
                        "AND m.status = 'completed'").split("\n")
        by = {}
        for r in rows:
            _, _, code, late = r.split("|")
            by.setdefault(code, []).append(int(late))
        got = {m["milestone"]: m for m in out["milestone_on_time"]}
        for code, lates in by.items():
            on_time = sum(1 for x in lates if x <= 0)
            self.assertEqual((got[code]["completed"], got[code]["on_time"]), (len(lates), on_time), code)
            self.assertEqual(got[code]["on_time_rate"], round(on_time / len(lates), 3))
        ttv = self.sql("SELECT coalesce(string_agg(ttv_days::text, ',' ORDER BY ttv_days), '') FROM onboarding_plans "
                       "WHERE status = 'completed' AND completed_on > csmcp.today() - 30 AND completed_on <= csmcp.today() "
                       "AND ttv_reached")
        days = [int(x) for x in ttv.split(",") if x]
        self.assertEqual(out["time_to_value_analysis"]["plans_reached"], len(days))
        if days:
            self.assertEqual(out["time_to_value_analysis"]["median_days"], round(statistics.median(days), 1))
            k = (len(days) - 1) * 0.9
            p90 = days[int(k)] + (days[min(int(k) + 1, len(days) - 1)] - days[int(k)]) * (k - int(k))
            self.assertAlmostEqual(out["time_to_value_analysis"]["p90_days"], round(p90, 1), places=1)
        self.invalid("optimize_onboarding_process", {"analysis_period_days": 6})
        self.invalid("optimize_onboarding_process", {"min_completed_onboardings": 0})


class OnboardingScopesTest(lib.TestCase):
    """A read-only key runs the read tools and the read actions, and is refused every write."""

    @classmethod
    def setUpClass(cls):
        cls.d = lib.Csmcpd(workers=1, auth=True).start()
        cls.p = du.prefix()
        du.psql(lib.database_url(), fixture_sql(cls.p))

    @classmethod
    def tearDownClass(cls):
        cls.d.stop()

    def raw(self, token, name, args):
        s = lib.McpSession(self.d.port, token=token)
        try:
            return s.request_raw("tools/call", {"name": name, "arguments": args})
        finally:
            s.close()

    def test_read_key(self):
        tok = su.create_key(self.d.conf_path, "read", "onb-read")
        c = self.p + "_p"
        for name, args in (("track_onboarding_progress", {"client_id": c}),
                           ("optimize_time_to_value", {"client_id": c}),
                           ("map_customer_journey", {"client_id": c}),
                           ("optimize_onboarding_process", {}),
                           ("manage_certification_program", {"client_id": c, "action": "track"}),
                           ("manage_certification_program", {"client_id": c})):
            st, _, msgs = self.raw(tok, name, args)
            self.assertEqual(st, 200, (name, msgs))
            self.assertFalse(msgs[-1]["result"].get("isError"), (name, msgs))
        for name, args in (("create_onboarding_plan", {"client_id": c, "customer_goals": ["x"]}),
                           ("activate_onboarding_automation", {"client_id": c, "plan_id": "onb_%s_1" % c}),
                           ("update_onboarding_progress", {"client_id": c, "plan_id": "onb_%s_1" % c,
                                                           "plan_status": "cancelled"}),
                           ("deliver_training_session", {"client_id": c, "training_module_id": self.p + "_m1"}),
                           ("manage_certification_program", {"client_id": c, "action": "issue",
                                                             "certification_level": "basic", "user_email": "u1@x.io"})):
            st, h, _ = self.raw(tok, name, args)
            self.assertEqual(st, 403, name)
            self.assertIn('scope="write"', h.get("www-authenticate", ""))
        self.assertEqual(du.psql(lib.database_url(), "SELECT status FROM onboarding_plans WHERE client_id = '%s'" % c),
                         "in_progress")
