"""The autonomous monitors (issue 18) through csmcpd with its monitor process, over MCP.

Each of the seven monitors runs (trigger_worker_now) on a hand-built fixture and must raise
exactly the expected alerts (subjects and kinds) among the fixture's objects, not duplicate them
on the next run, and resolve them when the data changes. The five control tools: exact listing
and defaults, configuration validation (unknown monitor, unknown parameter, type, range), the
change logged with old and new values, scope refusals, status figures against the tables, and a
clear error from trigger_worker_now when no monitor process leads."""
import datetime
import random

import data_util as du
import lib
import sec_util as su

TOOLS = ["get_autonomous_status", "configure_autonomous_worker", "trigger_worker_now",
         "get_worker_config", "list_available_workers"]
MONITORS = ["churn_risk_monitor", "usage_drop_alerts", "onboarding_progress", "nps_csat_monitor",
            "support_sla_tracker", "upsell_detector", "retention_analyzer"]


def today():
    return datetime.datetime.now(datetime.timezone.utc).date()


class AutonomousToolsTest(lib.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.url = lib.database_url()
        cls.p = du.prefix()
        cls.tk = random.randint(100000000, 900000000)  # ticket numbers of this run: TKT-<tk + k>
        cls.year = random.randint(1950, 2009)  # retention cohorts of this run: <year>-Q2, <year>-Q3
        # Scheduled runs would race the manual ones this test makes: keep the schedule off and
        # restore the stored configuration afterwards.
        cls.saved = du.psql(cls.url, "SELECT json_agg(json_build_object('name', name, 'enabled', enabled, "
                                     "'params', params, 'interval_hours', interval_hours)) FROM monitors")
        du.psql(cls.url, cls.fixture_sql())
        du.psql(cls.url, "UPDATE monitors SET enabled = false")
        cls.d = lib.Csmcpd(workers=1, conf={"monitor": {"enabled": True, "tick_ms": 200}}).start()
        cls.s = cls.d.session()
        tools = cls.s.list_tools()
        cls.schemas = {t["name"]: t.get("outputSchema") for t in tools}
        lib.wait_until(lambda: du.psql(cls.url, "SELECT csmcp.monitor_leader_info()->>'up'") == "true", 15,
                       what="a monitor leader")

    @classmethod
    def tearDownClass(cls):
        cls.s.close()
        cls.d.stop()
        # the cohort accounts would join the next run's cohorts
        du.psql(cls.url, "DELETE FROM accounts WHERE client_id LIKE '%s_r%%'" % cls.p)
        du.psql(cls.url, "UPDATE monitors m SET enabled = (x->>'enabled')::boolean, params = x->'params', "
                         "interval_hours = (x->>'interval_hours')::integer "
                         "FROM json_array_elements('%s'::json) x WHERE m.name = x->>'name'" % cls.saved.replace("'", "''"))

    # ------------------------------------------------------------ helpers

    @classmethod
    def cid(cls, k):
        return "%s_%s" % (cls.p, k)

    def call(self, name, args):
        out = self.s.call_ok(name, args)
        self.assertEqual(du.schema_errors(self.schemas[name], out), [],
                         "%s output does not match its outputSchema" % name)
        self.assertIsInstance(out.get("summary"), str)
        return out

    def fail_text(self, name, args, session=None):
        r = (session or self.s).call_tool(name, args)
        self.assertTrue(r.get("isError"), "%s(%s) should fail: %s" % (name, args, r))
        return r["content"][0]["text"]

    def q(self, sql):
        return du.psql(self.url, sql)

    def open_alerts(self, monitor):
        """{(subject, kind): (alert_id, severity)} of the open alerts of monitor about this fixture."""
        out = self.q("SELECT subject, kind, alert_id, severity FROM monitor_alerts WHERE monitor = '%s' "
                     "AND resolved_at IS NULL AND (subject LIKE '%%%s%%' OR client_id LIKE '%s%%' "
                     "OR subject LIKE 'cohort:%d-%%' OR subject LIKE 'TKT-%s%%')"
                     % (monitor, self.p, self.p, self.year, str(self.tk)[:4]))
        res = {}
        for line in filter(None, out.split("\n")):
            s, k, i, sev = line.split("|")
            if s.startswith("TKT-") and not self.q("SELECT 1 FROM support_tickets WHERE ticket_id = '%s' AND "
                                                  "client_id LIKE '%s%%'" % (s, self.p)):
                continue
            res[(s, k)] = (int(i), sev)
        return res

    def run_monitor(self, monitor):
        out = self.call("trigger_worker_now", {"worker_name": monitor})
        self.assertEqual(out["worker"], monitor)
        run = self.q("SELECT status || '|' || trigger || '|' || (slot IS NULL) || '|' || alerts FROM monitor_runs "
                     "WHERE run_id = %d" % out["run_id"])
        self.assertEqual(run, "ok|manual|true|%d" % out["data"]["conditions"])
        return out

    def check_cycle(self, monitor, expected, change_sql, after):
        """Run, compare, run again (no duplicate), change the data, run: expected `after`."""
        self.run_monitor(monitor)
        first = self.open_alerts(monitor)
        self.assertEqual({k: v[1] for k, v in first.items()}, expected, monitor)
        out = self.run_monitor(monitor)
        again = self.open_alerts(monitor)
        self.assertEqual(again, first, "%s: second run must keep the same open alerts" % monitor)
        opened_now = set(out["data"]["opened_alert_ids"])
        self.assertFalse(opened_now & {v[0] for v in again.values()}, "%s re-opened an alert" % monitor)
        self.q(change_sql)
        self.run_monitor(monitor)
        third = self.open_alerts(monitor)
        self.assertEqual({k: v[1] for k, v in third.items()}, after, monitor)
        # what disappeared was resolved by that run, not deleted
        for key, (aid, _) in first.items():
            if key not in after:
                self.assertEqual(self.q("SELECT resolved_at IS NOT NULL AND resolved_run_id IS NOT NULL FROM "
                                        "monitor_alerts WHERE alert_id = %d" % aid), "t", key)
        # one open alert per (monitor, kind, subject), whatever the history
        self.assertEqual(self.q("SELECT count(*) FROM (SELECT 1 FROM monitor_alerts WHERE resolved_at IS NULL "
                                "GROUP BY monitor, kind, subject HAVING count(*) > 1) x"), "0")
        return first, third

    @classmethod
    def fixture_sql(cls):
        p, t = cls.p, today()
        d = lambda n: (t - datetime.timedelta(days=n)).isoformat()  # noqa: E731
        acc = []

        def account(k, health, status="active", stage="active"):
            acc.append("('%s_%s', 'Mon %s', 'Mon %s Inc', 'professional', '%s', '%s', %d)"
                       % (p, k, k, k, stage, status, health))
        # churn: c1 55 at_risk, c2 45 critical, c3 60 none (boundary), c4 30 but churned
        account("c1", 55), account("c2", 45), account("c3", 60), account("c4", 30, "churned", "churned")
        for k in ["u1", "u2", "u3", "u4", "u5", "o1", "o2", "n1", "n2", "n3", "s", "up1", "up2", "up3"]:
            account(k, 80 if k != "up3" else 74)
        for i in range(10):
            account("ra%d" % i, 80)
        for i in range(9):
            account("rb%d" % i, 80)
        sql = ["INSERT INTO accounts (client_id, client_name, company_name, tier, lifecycle_stage, status, health_score) "
               "VALUES " + ", ".join(acc)]
        # usage: previous window (days 7..13 ago) 10 users a day; current window (0..6 ago):
        # u1 6 a day (-40 %), u2 7 a day (-30.0 %, the boundary), u3 sum 50 (-28.6 %), u4 none
        # (-100 %), u5 no previous usage
        rows = []
        for k in ["u1", "u2", "u3", "u4"]:
            rows += ["('%s_%s', '%s', 10)" % (p, k, d(n)) for n in range(7, 14)]
        rows += ["('%s_u1', '%s', 6)" % (p, d(n)) for n in range(7)]
        rows += ["('%s_u2', '%s', 7)" % (p, d(n)) for n in range(7)]
        rows += ["('%s_u3', '%s', %d)" % (p, d(n), 8 if n == 0 else 7) for n in range(7)]
        rows += ["('%s_u5', '%s', 5)" % (p, d(n)) for n in range(7)]
        # upsell: up1 8.0 of 10 seats (80 %), up2 7.9 (79 %), up3 80 % but health 74
        rows += ["('%s_up1', '%s', 8)" % (p, d(n)) for n in range(30)]
        rows += ["('%s_up2', '%s', %d)" % (p, d(n), 5 if n == 0 else 8) for n in range(30)]
        rows += ["('%s_up3', '%s', 8)" % (p, d(n)) for n in range(30)]
        sql.append("INSERT INTO usage_daily (client_id, day, active_users) VALUES " + ", ".join(rows))
        sql.append("INSERT INTO contracts (contract_id, client_id, tier, contract_value, licensed_seats, start_date, end_date) "
                   "VALUES " + ", ".join("('%s_k_%s', '%s_%s', 'professional', 50000, 10, '%s', '%s')"
                                         % (p, k, p, k, d(100), d(-265)) for k in ["up1", "up2", "up3"]))
        # onboarding: o1 in progress (midpoint not reached): m1 7 days late, m2 6, m3 14 (high);
        # o2 past its midpoint with 1 of 4 milestones completed (25 % < 50 %)
        sql.append("INSERT INTO onboarding_plans (plan_id, client_id, name, product_tier, start_date, target_date, status) VALUES "
                   "('%s_o1', '%s_o1', 'Plan 1', 'professional', '%s', '%s', 'in_progress'), "
                   "('%s_o2', '%s_o2', 'Plan 2', 'professional', '%s', '%s', 'in_progress')"
                   % (p, p, d(20), d(-40), p, p, d(40), d(-20)))
        sql.append("INSERT INTO onboarding_milestones (milestone_id, plan_id, seq, name, week, estimated_hours, due_date, status, blocker) VALUES "
                   "('%s_o1_m1', '%s_o1', 1, 'Kickoff', 1, 4, '%s', 'not_started', NULL), "
                   "('%s_o1_m2', '%s_o1', 2, 'Setup', 2, 8, '%s', 'in_progress', NULL), "
                   "('%s_o1_m3', '%s_o1', 3, 'Integration', 3, 8, '%s', 'blocked', 'waiting on IT'), "
                   "('%s_o2_m1', '%s_o2', 1, 'Kickoff', 1, 4, NULL, 'completed', NULL), "
                   "('%s_o2_m2', '%s_o2', 2, 'Setup', 2, 4, NULL, 'in_progress', NULL), "
                   "('%s_o2_m3', '%s_o2', 3, 'Integration', 3, 4, NULL, 'not_started', NULL), "
                   "('%s_o2_m4', '%s_o2', 4, 'Adoption', 4, 4, NULL, 'not_started', NULL)"
                   % (p, p, d(7), p, p, d(6), p, p, d(14), p, p, p, p, p, p, p, p))
        sql.append("INSERT INTO onboarding_tasks (milestone_id, title, due_date, status) VALUES "
                   "('%s_o1_m2', '%s task late', '%s', 'open'), ('%s_o1_m2', '%s task due today', '%s', 'open')"
                   % (p, p, d(1), p, p, d(0)))
        # a blocked task names its blocker (migration 0233)
        sql.append("INSERT INTO onboarding_tasks (milestone_id, title, status, blocker) "
                   "VALUES ('%s_o1_m2', '%s task blocked', 'blocked', 'waiting on SSO')" % (p, p))
        sql.append("INSERT INTO onboarding_automation_triggers (plan_id, trigger_type, monitor) VALUES "
                   "('%s_o1', 'task_overdue', 'onboarding_progress'), ('%s_o1', 'blocker_identified', 'onboarding_progress')"
                   % (p, p))
        # NPS / CSAT: n1 latest 6 (earlier 10), n2 latest 9 (earlier 2), n3 latest 3;
        # CSAT: n1 latest 3, n2 latest 4 (earlier 1)
        sql.append("INSERT INTO nps_responses (response_id, client_id, score, responded_at) VALUES "
                   "('%s_r1', '%s_n1', 10, now() - interval '20 days'), ('%s_r2', '%s_n1', 6, now() - interval '2 days'), "
                   "('%s_r3', '%s_n2', 2, now() - interval '20 days'), ('%s_r4', '%s_n2', 9, now() - interval '2 days'), "
                   "('%s_r5', '%s_n3', 3, now() - interval '5 days')" % ((p,) * 10))
        sql.append("INSERT INTO csat_responses (response_id, client_id, survey_type, score, responded_at) VALUES "
                   "('%s_s1', '%s_n1', 'csat', 3, now() - interval '1 day'), ('%s_s2', '%s_n2', 'csat', 1, now() - interval '9 days'), "
                   "('%s_s3', '%s_n2', 'csat', 4, now() - interval '1 day'), ('%s_s4', '%s_n3', 'ces', 1, now() - interval '1 day')"
                   % ((p,) * 8))
        # tickets (priority, created minutes ago, first response minutes after creation or NULL, status):
        # t1 P2 120 min unanswered (60) -> breached, high; t2 P1 10 min (15) -> due in 5 min, breaching, high;
        # t3 P3 0 min -> due in 240 min: none; t4 P0 70 min answered after 1 min, resolution 60 -> breached, critical;
        # t5 P2 resolved -> none; t6 P4 unanswered 400 min of 480 -> breaching (due in 80 min), medium
        tks = [(1, "P2", 120, None, "open", 60, 1440), (2, "P1", 10, None, "open", 15, 240), (3, "P3", 0, None, "open", 240, 2880),
               (4, "P0", 70, 1, "in_progress", 5, 60), (5, "P2", 300, 5, "resolved", 60, 1440), (6, "P4", 400, None, "open", 480, 4320)]
        vals = []
        for k, pr, ago, fr, st, s1, s2 in tks:
            created = "now() - interval '%d minutes'" % ago
            vals.append("('TKT-%d', '%s_s', 'subject %d', 'd', '%s', '%s', 'r@example.com', 'R', %d, %d, %s, %s, %s)"
                        % (cls.tk + k, p, k, pr, st, s1, s2, created,
                           "NULL" if fr is None else "%s + interval '%d minutes'" % (created, fr),
                           "now()" if st == "resolved" else "NULL"))
        sql.append("INSERT INTO support_tickets (ticket_id, client_id, subject, description, priority, status, requester_email, "
                   "requester_name, sla_first_response_minutes, sla_resolution_minutes, created_at, first_response_at, resolved_at) "
                   "VALUES " + ", ".join(vals))
        # retention cohorts: <year>-Q2 (10 accounts, 2 churned within 12 months -> 0.8 < 0.85);
        # <year>-Q3 (9 accounts, all churned: below cohort_size_min 10)
        sql.append("INSERT INTO contracts (contract_id, client_id, tier, contract_value, start_date, end_date, status) VALUES "
                   + ", ".join("('%s_k_ra%d', '%s_ra%d', 'standard', 1000, '%d-04-15', '%d-04-15', 'renewed')" % (p, i, p, i, cls.year, cls.year + 1)
                               for i in range(10)) + ", "
                   + ", ".join("('%s_k_rb%d', '%s_rb%d', 'standard', 1000, '%d-08-15', '%d-08-15', 'cancelled')" % (p, i, p, i, cls.year, cls.year + 1)
                               for i in range(9)))
        churned = ["%s_ra0" % p, "%s_ra1" % p] + ["%s_rb%d" % (p, i) for i in range(9)]
        sql.append("UPDATE accounts SET status = 'churned', lifecycle_stage = 'churned' WHERE client_id IN (%s)"
                   % ", ".join("'%s'" % c for c in churned))
        sql.append("INSERT INTO lifecycle_transitions (client_id, from_stage, to_stage, changed_at) VALUES "
                   + ", ".join("('%s', 'active', 'churned', '%d-12-01')" % (c, cls.year) for c in churned))
        return ";\n".join(sql)

    # ------------------------------------------------------------ the seven monitors

    def test_churn_risk_monitor(self):
        c = self.cid
        self.check_cycle("churn_risk_monitor",
                         {(c("c1"), "at_risk"): "high", (c("c2"), "critical_risk"): "critical"},
                         "UPDATE accounts SET health_score = 70 WHERE client_id = '%s'; "
                         "UPDATE accounts SET health_score = 55 WHERE client_id = '%s'" % (c("c1"), c("c2")),
                         {(c("c2"), "at_risk"): "high"})

    def test_usage_drop_alerts(self):
        c = self.cid
        self.check_cycle("usage_drop_alerts",
                         {(c("u1"), "usage_drop"): "medium", (c("u2"), "usage_drop"): "medium",
                          (c("u4"), "usage_drop"): "high"},
                         "UPDATE usage_daily SET active_users = 9 WHERE client_id = '%s' AND day > current_date - 7"
                         % c("u1"),
                         {(c("u2"), "usage_drop"): "medium", (c("u4"), "usage_drop"): "high"})
        detail = self.q("SELECT detail FROM monitor_alerts WHERE monitor = 'usage_drop_alerts' AND subject = '%s' "
                        "AND resolved_at IS NULL" % c("u2"))
        self.assertIn('"drop_percent": 30.0', detail)
        self.assertIn('"current_mean_dau": 7.00', detail)

    def test_onboarding_progress(self):
        p = self.p
        task = lambda title: self.q("SELECT task_id FROM onboarding_tasks WHERE title = '%s %s'" % (p, title))  # noqa: E731
        late, blocked = task("task late"), task("task blocked")
        self.check_cycle("onboarding_progress",
                         {(p + "_o1_m1", "milestone_overdue"): "medium", (p + "_o1_m3", "milestone_overdue"): "high",
                          (p + "_o2", "behind_plan"): "medium", ("task:" + late, "onboarding_task_overdue"): "medium",
                          ("milestone:%s_o1_m3" % p, "onboarding_blocker"): "high",
                          ("task:" + blocked, "onboarding_blocker"): "high"},
                         "UPDATE onboarding_milestones SET status = 'completed', completed_on = current_date "
                         "WHERE milestone_id IN ('%s_o1_m1', '%s_o2_m2'); "
                         "UPDATE onboarding_tasks SET status = 'done' WHERE task_id = %s" % (p, p, late),
                         {(p + "_o1_m3", "milestone_overdue"): "high",
                          ("milestone:%s_o1_m3" % p, "onboarding_blocker"): "high",
                          ("task:" + blocked, "onboarding_blocker"): "high"})

    def test_nps_csat_monitor(self):
        c = self.cid
        self.check_cycle("nps_csat_monitor",
                         {(c("n1"), "nps_detractor"): "medium", (c("n3"), "nps_detractor"): "high",
                          (c("n1"), "low_csat"): "medium"},
                         "INSERT INTO nps_responses (response_id, client_id, score) VALUES ('%s_r6', '%s', 9)"
                         % (self.p, c("n1")),
                         {(c("n3"), "nps_detractor"): "high", (c("n1"), "low_csat"): "medium"})

    def test_support_sla_tracker(self):
        t = lambda k: "TKT-%d" % (self.tk + k)  # noqa: E731
        self.check_cycle("support_sla_tracker",
                         {(t(1), "sla_breached"): "high", (t(2), "sla_breaching"): "high",
                          (t(4), "sla_breached"): "critical", (t(6), "sla_breaching"): "medium"},
                         "UPDATE support_tickets SET status = 'resolved', first_response_at = created_at + interval '1 minute', "
                         "resolved_at = now() WHERE ticket_id IN ('%s', '%s')" % (t(1), t(4)),
                         {(t(2), "sla_breaching"): "high", (t(6), "sla_breaching"): "medium"})

    def test_upsell_detector(self):
        c = self.cid
        self.check_cycle("upsell_detector", {(c("up1"), "upsell_candidate"): "low"},
                         "UPDATE accounts SET health_score = 60 WHERE client_id = '%s'" % c("up1"), {})

    def test_retention_analyzer(self):
        cohort = "cohort:%d-Q2" % self.year
        self.check_cycle("retention_analyzer", {(cohort, "low_retention"): "medium"},
                         "UPDATE accounts SET status = 'active', lifecycle_stage = 'active' WHERE client_id = '%s'"
                         % self.cid("ra0"), {})
        last = self.q("SELECT detail FROM monitor_alerts WHERE subject = '%s' ORDER BY alert_id DESC LIMIT 1" % cohort)
        self.assertIn('"retained": 8', last)
        self.assertIn('"retention_rate": 0.800', last)

    # ------------------------------------------------------------ the five tools

    def test_list_and_config(self):
        out = self.call("list_available_workers", {})
        self.assertEqual([w["name"] for w in out["workers"]], MONITORS)
        self.assertEqual(out["total_workers"], 7)
        got = self.call("get_worker_config", {"worker_name": "usage_drop_alerts"})
        self.assertEqual(got["config"]["params"], {"drop_threshold_percent": 30, "check_window_days": 7})
        self.assertEqual(got["config"]["interval_hours"], 6)
        self.assertEqual(got["parameters"]["check_window_days"], {"type": "integer", "min": 1, "max": 90, "default": 7})
        for m in MONITORS:
            self.call("get_worker_config", {"worker_name": m})

    def test_configure_validates_and_logs(self):
        bad = [({"worker_name": "nps_csat_monitor", "enabled": True, "params": {"bogus": 1}},
                "params.bogus: not a parameter of nps_csat_monitor (parameters: csat_alert_threshold, lookback_days, nps_alert_threshold)"),
               ({"worker_name": "nps_csat_monitor", "enabled": True, "params": {"nps_alert_threshold": 11}},
                "params.nps_alert_threshold: must be between 0 and 10"),
               ({"worker_name": "nps_csat_monitor", "enabled": True, "params": {"lookback_days": 2.5}},
                "params.lookback_days: must be a whole number"),
               ({"worker_name": "support_sla_tracker", "enabled": True, "params": {"sla_breach_alert": 1}},
                "params.sla_breach_alert: must be true or false")]
        for args, msg in bad:
            self.assertIn(msg, self.fail_text("configure_autonomous_worker", args))
        try:
            r = self.s.call_tool("configure_autonomous_worker", {"worker_name": "deal_risk_monitor", "enabled": True})
            self.assertTrue(r.get("isError"), r)
        except lib.McpError as e:
            self.assertEqual(e.code, -32602)
        out = self.call("configure_autonomous_worker", {"worker_name": "nps_csat_monitor", "enabled": False,
                                                        "params": {"nps_alert_threshold": 5}, "interval_hours": 12})
        self.assertEqual(out["enabled"], {"previous": False, "current": False})
        self.assertEqual(out["interval_hours"]["current"], 12)
        self.assertEqual(out["params"]["nps_alert_threshold"], 5)
        got = self.call("get_worker_config", {"worker_name": "nps_csat_monitor"})
        self.assertEqual(got["config"]["params"], {"nps_alert_threshold": 5, "csat_alert_threshold": 3, "lookback_days": 90})
        log = self.q("SELECT old_values->'params'->>'nps_alert_threshold', new_values->'params'->>'nps_alert_threshold', "
                     "new_values->>'interval_hours' FROM activity_log WHERE entity = 'monitor' AND entity_id = 'nps_csat_monitor' "
                     "ORDER BY activity_id DESC LIMIT 1")
        self.assertEqual(log, "6|5|12")
        # the new threshold applies at the next run: n1's latest NPS 6 is no longer a detractor
        run = self.call("trigger_worker_now", {"worker_name": "nps_csat_monitor"})
        subjects = {(a["subject"], a["kind"]) for a in run["data"]["alerts"]}
        self.assertNotIn((self.cid("n1"), "nps_detractor"), subjects)
        self.call("configure_autonomous_worker", {"worker_name": "nps_csat_monitor", "enabled": False,
                                                  "params": {"nps_alert_threshold": 6}, "interval_hours": 24})

    def test_status_against_tables(self):
        self.call("trigger_worker_now", {"worker_name": "upsell_detector"})
        out = self.call("get_autonomous_status", {})
        self.assertTrue(out["running"])
        self.assertTrue(out["leader"]["up"])
        pid = int(self.q("SELECT pid FROM monitor_leader"))
        self.assertEqual(out["leader"]["pid"], pid)
        self.assertIn("role=monitor leader=yes", self.d.ctl("workers").stdout)
        self.assertIn("monitor: pid %d leader" % pid, self.d.ctl("status").stdout)
        w = out["workers"]["upsell_detector"]
        self.assertEqual(w["run_count"], int(self.q("SELECT count(*) FROM monitor_runs WHERE monitor = 'upsell_detector' AND status = 'ok'")))
        self.assertEqual(w["alert_count"], int(self.q("SELECT count(*) FROM monitor_alerts WHERE monitor = 'upsell_detector' AND resolved_at IS NULL")))
        self.assertEqual(w["last_run"]["trigger"], "manual")
        self.assertIsNone(w["next_run_at"])  # disabled for this test
        self.assertEqual(sorted(out["workers"]), sorted(MONITORS))
        self.assertEqual(out["open_alerts"], int(self.q("SELECT count(*) FROM monitor_alerts WHERE resolved_at IS NULL")))

    def test_trigger_without_leader_and_scopes(self):
        d = lib.Csmcpd(workers=1, auth=True).start()  # no monitor process of its own
        try:
            # this csmcpd has no monitor, but the class's csmcpd leads on the same database
            tok = su.create_key(d.conf_path, "read", "autonomous-read")
            s = lib.McpSession(d.port, token=tok)
            try:
                for name, args in [("trigger_worker_now", {"worker_name": "upsell_detector"}),
                                   ("configure_autonomous_worker", {"worker_name": "upsell_detector", "enabled": False})]:
                    st, _, _ = s.request_raw("tools/call", {"name": name, "arguments": args})
                    self.assertEqual(st, 403, name)
                s.call_ok("get_autonomous_status", {})
                s.call_ok("list_available_workers", {})
                s.call_ok("get_worker_config", {"worker_name": "upsell_detector"})
            finally:
                s.close()
            tok = su.create_key(d.conf_path, "read,write", "autonomous-write")
            s = lib.McpSession(d.port, token=tok)
            try:
                st, _, _ = s.request_raw("tools/call", {"name": "configure_autonomous_worker",
                                                        "arguments": {"worker_name": "upsell_detector", "enabled": False}})
                self.assertEqual(st, 403)
            finally:
                s.close()
        finally:
            d.stop()
        # with the leader gone, trigger_worker_now says so
        self.d.stop()
        try:
            lib.wait_until(lambda: self.q("SELECT csmcp.monitor_leader_info()->>'up'") == "false", 15, what="leader gone")
            d = lib.Csmcpd(workers=1).start()
            try:
                s = d.session()
                text = self.fail_text("trigger_worker_now", {"worker_name": "upsell_detector"}, session=s)
                self.assertIn("autonomous scheduler not running: no csmcp-monitor process holds the leader lock", text)
                out = s.call_ok("get_autonomous_status", {})
                self.assertFalse(out["running"])
                self.assertIn("no monitor leader is running", out["summary"])
                s.close()
            finally:
                d.stop()
        finally:
            self.__class__.d = lib.Csmcpd(workers=1, conf={"monitor": {"enabled": True, "tick_ms": 200}}).start()
            self.__class__.s = self.d.session()
            lib.wait_until(lambda: self.q("SELECT csmcp.monitor_leader_info()->>'up'") == "true", 15, what="leader back")


if __name__ == "__main__":
    lib.main()
