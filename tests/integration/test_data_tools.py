"""The data tools (registry categories core, health and ingest) through csmcpd over MCP,
against a fixture with known data: exact values for every health component and for each tool's
figures, structuredContent checked against the tool's outputSchema, writes checked in the
database (persisted and audited)."""
import datetime
import json

import data_util as du
import lib
import toolinv

DATA_TOOLS = toolinv.names(categories=("core", "health", "ingest"))


def today():
    return datetime.datetime.now(datetime.timezone.utc).date()


class DataToolsTest(lib.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.url = lib.database_url()
        cls.p = du.prefix()
        lib.psql(cls.url, du.fixture_sql(cls.p))
        cls.d = lib.Csmcpd(workers=2).start()
        cls.s = cls.d.session()
        tools = cls.s.list_tools()
        cls.schemas = {t["name"]: t.get("outputSchema") for t in tools}

    @classmethod
    def tearDownClass(cls):
        cls.s.close()
        cls.d.stop()

    def call(self, name, args):
        out = self.s.call_ok(name, args)
        errs = du.schema_errors(self.schemas[name], out)
        self.assertEqual(errs, [], "%s output does not match its outputSchema" % name)
        return out

    def fail_text(self, name, args):
        r = self.s.call_tool(name, args)
        self.assertTrue(r.get("isError"), "%s(%s) should fail" % (name, args))
        return r["content"][0]["text"]

    def cid(self, k):
        return "%s_%s" % (self.p, k)

    # ------------------------------------------------------------ registry

    def test_registry_lists_every_data_tool_with_schemas(self):
        self.assertGreaterEqual(len(DATA_TOOLS), 14)
        for name in DATA_TOOLS:
            self.assertIn(name, self.schemas)
            self.assertIsInstance(self.schemas[name], dict, name)

    # ------------------------------------------------------------ health model

    def test_health_components_exact(self):
        for k in ("a", "c"):
            exp = du.FIXTURE_EXPECT[k]
            out = self.call("calculate_health_score", {"client_id": self.cid(k)})
            self.assertEqual(out["component_scores"], exp["components"], k)
            self.assertEqual(out["current_health_score"], exp["score"], k)
            self.assertEqual(out["risk_level"], exp["risk"], k)
            self.assertAlmostEqual(out["churn_prediction"]["churn_probability"], exp["churn"])
        # B has a stored previous score of 60: change -21, declining, four risk indicators.
        exp = du.FIXTURE_EXPECT["b"]
        out = self.call("calculate_health_score", {"client_id": self.cid("b")})
        self.assertEqual(out["component_scores"], exp["components"])
        self.assertEqual(out["current_health_score"], 39)
        self.assertEqual(out["previous_health_score"], 60)
        self.assertEqual(out["score_change"], -21)
        self.assertEqual(out["health_trend"], "declining")
        self.assertEqual(out["risk_level"], "critical")
        self.assertEqual(sorted(i["indicator"] for i in out["risk_indicators"]),
                         ["risk_declining_health", "risk_low_engagement", "risk_low_usage",
                          "risk_support_issues"])
        sev = {i["indicator"]: i["severity"] for i in out["risk_indicators"]}
        self.assertEqual(sev["risk_low_engagement"], "medium")  # 60 is not < 60
        self.assertEqual(sev["risk_low_usage"], "high")
        self.assertEqual(sorted(a["type"] for a in out["automated_alerts"]),
                         ["below_risk_threshold", "churn_risk", "declining_trend",
                          "multiple_risk_indicators"])
        m = out["health_metrics"]
        self.assertEqual((m["tickets_opened"], m["critical_tickets_opened"]), (12, 3))
        self.assertEqual((m["overdue_invoices"], m["days_until_renewal"]), (1, 20))
        self.assertEqual(m["days_since_last_usage"], 11)
        self.assertEqual(out["churn_prediction"]["predicted_churn_date"],
                         (today() + datetime.timedelta(days=120)).isoformat())
        # Stored as history and on the account.
        row = lib.psql(self.url, "SELECT overall_score, trend, usage_score, payment_score FROM "
                      "health_scores WHERE client_id = '%s' ORDER BY score_id DESC LIMIT 1"
                      % self.cid("b"))
        self.assertEqual(row, "39|declining|3|50")
        self.assertEqual(lib.psql(self.url, "SELECT health_score || '|' || health_trend FROM "
                                 "accounts WHERE client_id = '%s'" % self.cid("b")),
                         "39|declining")

    def test_health_trend_and_custom_weights(self):
        a = self.cid("a")
        first = self.call("calculate_health_score", {"client_id": a})
        second = self.call("calculate_health_score", {"client_id": a})
        self.assertEqual(second["previous_health_score"], first["current_health_score"])
        self.assertEqual(second["score_change"], 0)
        self.assertEqual(second["health_trend"], "stable")
        self.assertGreaterEqual(len(second["historical_scores"]), 2)
        w = {"usage_weight": 0.2, "engagement_weight": 0.2, "support_weight": 0.2,
             "satisfaction_weight": 0.2, "payment_weight": 0.2}
        out = self.call("calculate_health_score",
                        {"client_id": a, "scoring_model": "custom", "component_weights": w})
        # round(.2 * (80 + 95 + 84 + 62.5 + 80)) = round(80.3)
        self.assertEqual(out["current_health_score"], 80)
        w["payment_weight"] = 0.4
        self.assertIn("sum to 1", self.fail_text(
            "calculate_health_score",
            {"client_id": a, "scoring_model": "custom", "component_weights": w}))
        self.assertIn("requires component_weights", self.fail_text(
            "calculate_health_score", {"client_id": a, "scoring_model": "custom"}))

    def test_engagement_thresholds(self):
        # days since last usage -> engagement, at each boundary of the rule
        cases = [(0, 95), (1, 85), (3, 85), (4, 75), (7, 75), (8, 60), (14, 60), (15, 45),
                 (30, 45), (31, 30)]
        sql = ["INSERT INTO accounts (client_id, client_name, company_name) VALUES "]
        sql.append(", ".join("('%s_e%d', 'E%d', 'E')" % (self.p, d, d) for d, _ in cases) + ";")
        sql.append("INSERT INTO usage_daily (client_id, day, active_users, events) VALUES ")
        sql.append(", ".join("('%s_e%d', csmcp.today() - %d, 1, 1)" % (self.p, d, d)
                             for d, _ in cases) + ";")
        lib.psql(self.url, "".join(sql))
        for d, want in cases:
            out = self.call("calculate_health_score", {"client_id": "%s_e%d" % (self.p, d)})
            self.assertEqual(out["component_scores"]["engagement"], want, "days=%d" % d)

    # ------------------------------------------------------------ core tools

    def test_overview_exact(self):
        a = self.cid("a")
        self.call("calculate_health_score", {"client_id": a})
        o = self.call("get_client_overview", {"client_id": a})
        c = o["contract"]
        self.assertEqual((c["annual_value"], c["licensed_seats"], c["days_until_renewal"]),
                         (50000, 10, 265))
        u = o["usage"]
        self.assertEqual((u["avg_daily_active_users_7d"], u["avg_daily_active_users_30d"]),
                         (8, 8))
        self.assertEqual((u["seat_utilization_30d"], u["events_30d"]), (0.8, 1200))
        self.assertEqual(u["days_since_last_activity"], 0)
        self.assertEqual(u["top_features_30d"][0], {"feature_id": self.p + "_dash", "events": 900})
        self.assertEqual((o["support"]["open_tickets"], o["support"]["critical_open_tickets"],
                          o["support"]["tickets_last_30d"]), (2, 1, 2))
        self.assertEqual((o["satisfaction"]["nps_90d"], o["satisfaction"]["nps_responses_90d"],
                          o["satisfaction"]["last_nps_score"]), (0, 5, 10))
        self.assertEqual((o["payment"]["overdue_invoices"], o["payment"]["late_payments_12m"]),
                         (0, 1))
        self.assertEqual(o["health"]["current_score"], 82)
        self.assertEqual(o["health"]["components"]["satisfaction"], 62.5)
        self.assertEqual(o["renewal"]["renewal_probability"], 0.9)
        self.assertEqual(o["revenue"]["current_arr"], 50000)
        self.assertEqual({r["type"] for r in o["risks"]}, {"critical_tickets"})
        self.assertEqual({x["type"] for x in o["opportunities"]}, {"user_expansion", "tier_upgrade"})
        self.assertTrue(any(r["type"] == "communication" for r in o["recent_activity"]))
        b = self.call("get_client_overview", {"client_id": self.cid("b")})
        self.assertEqual(b["payment"]["overdue_invoices"], 1)
        self.assertEqual(b["payment"]["overdue_amount"], 2000)
        self.assertIn("overdue_payment", {r["type"] for r in b["risks"]})
        self.assertIsNone(self.call("get_client_overview", {"client_id": self.cid("c")})["contract"])
        self.assertEqual(self.fail_text("get_client_overview", {"client_id": self.p + "_zz"}),
                         "client not found: %s_zz" % self.p)

    def test_register_update_audited(self):
        out = self.call("register_client", {
            "client_name": "Delta Corp", "company_name": "Delta Co", "contract_value": 12000,
            "licensed_seats": 15, "tier": "standard", "primary_contact_email": "d@delta.io",
            "industry": "Industry %s new" % self.p})
        cid = out["client_id"]
        self.assertRegex(cid, r"^cs_[0-9]+_delta_")
        self.assertEqual(out["summary"]["contract_term_days"], 365)
        self.assertEqual(out["client_record"]["lifecycle_stage"], "onboarding")
        self.assertEqual(lib.psql(self.url, "SELECT contract_value || '|' || licensed_seats FROM "
                                 "contracts WHERE client_id = '%s' AND status = 'active'" % cid),
                         "12000.00|15")
        self.assertEqual(lib.psql(self.url, "SELECT count(*) FROM contacts WHERE client_id = '%s' "
                                 "AND is_primary" % cid), "1")
        up = self.call("update_client_info", {"client_id": cid, "updates": {
            "tier": "professional", "licensed_seats": 20, "industry": "Industry %s new" % self.p}})
        self.assertEqual(up["updated_fields"], ["licensed_seats", "tier"])
        self.assertEqual(up["previous_values"], {"tier": "standard", "licensed_seats": 15})
        self.assertEqual(up["new_values"], {"tier": "professional", "licensed_seats": 20})
        self.assertEqual(up["audit"]["updated_by"], "anonymous")
        act = lib.psql_json(self.url, "SELECT json_build_object('a', actor, 'o', old_values, 'n', "
                           "new_values) FROM activity_log WHERE activity_id = %d"
                           % up["audit"]["activity_id"])
        self.assertEqual(act, {"a": "anonymous", "o": {"tier": "standard", "licensed_seats": 15},
                               "n": {"tier": "professional", "licensed_seats": 20}})
        same = self.call("update_client_info", {"client_id": cid, "updates": {"tier": "professional"}})
        self.assertEqual(same["updated_fields"], [])
        self.assertIn("after contract_start_date", self.fail_text("register_client", {
            "client_name": "X", "company_name": "Y", "contract_start_date": "2026-01-10",
            "contract_end_date": "2026-01-01"}))
        try:  # not an updatable field: the input schema (or the SQL) rejects it
            r = self.s.call_tool("update_client_info", {"client_id": cid,
                                                        "updates": {"health_score": 99}})
            self.assertTrue(r.get("isError"))
        except lib.McpError as e:
            self.assertEqual(e.code, -32602)

    def test_list_clients_filters_and_summary(self):
        out = self.call("list_clients", {"search": self.p, "limit": 1, "sort_by": "client_id"})
        self.assertEqual(out["pagination"]["total_count"], 3)
        self.assertEqual(out["pagination"]["returned_count"], 1)
        self.assertTrue(out["pagination"]["has_more"])
        self.assertEqual(out["clients"][0]["client_id"], self.cid("a"))
        # The summary covers the whole filtered set (3 accounts), not the page of 1.
        self.assertEqual(out["summary"]["total_clients"], 3)
        self.assertEqual(out["summary"]["total_arr"], 58000)
        self.assertEqual(out["summary"]["tier_breakdown"],
                         {"starter": 1, "standard": 1, "professional": 1, "enterprise": 0})
        self.assertEqual(out["summary"]["lifecycle_breakdown"]["onboarding"], 1)
        page2 = self.call("list_clients", {"search": self.p, "limit": 2, "offset": 1,
                                           "sort_by": "client_id"})
        self.assertEqual([c["client_id"] for c in page2["clients"]], [self.cid("b"), self.cid("c")])
        self.assertFalse(page2["pagination"]["has_more"])
        t = self.call("list_clients", {"search": self.p, "tier_filter": "starter"})
        self.assertEqual([c["client_id"] for c in t["clients"]], [self.cid("b")])
        self.assertEqual(t["clients"][0]["support_tickets_open"], 12)
        self.assertEqual(t["clients"][0]["days_until_renewal"], 20)
        r = self.call("list_clients", {"search": self.p, "renewal_within_days": 30})
        self.assertEqual([c["client_id"] for c in r["clients"]], [self.cid("b")])
        byv = self.call("list_clients", {"search": self.p, "sort_by": "contract_value",
                                         "sort_order": "desc"})
        self.assertEqual([c["client_id"] for c in byv["clients"]],
                         [self.cid("a"), self.cid("b"), self.cid("c")])

    def test_timeline_filters(self):
        a = self.cid("a")
        sup = self.call("get_client_timeline", {
            "client_id": a, "event_types": ["support"],
            "start_date": (today() - datetime.timedelta(days=30)).isoformat()})
        self.assertEqual(sup["summary"]["total_events"], 2)  # the 60-day-old ticket is outside
        self.assertEqual({e["event_type"] for e in sup["timeline"]}, {"support"})
        wide = self.call("get_client_timeline", {"client_id": a, "event_types": ["support"]})
        self.assertEqual(wide["summary"]["total_events"], 4)  # + old ticket opened and resolved
        narrow = self.call("get_client_timeline", {
            "client_id": a, "start_date": (today() - datetime.timedelta(days=2)).isoformat(),
            "end_date": today().isoformat(), "event_types": ["support", "feedback"]})
        self.assertEqual(narrow["summary"]["event_type_breakdown"], {"support": 1, "feedback": 1})
        ts = [e["timestamp"] for e in narrow["timeline"]]
        self.assertEqual(ts, sorted(ts, reverse=True))
        lim = self.call("get_client_timeline", {"client_id": a, "limit": 1})
        self.assertEqual(lim["summary"]["returned_events"], 1)
        self.assertGreater(lim["summary"]["total_events"], 1)

    # ------------------------------------------------------------ health & segmentation

    def test_usage_engagement(self):
        start = today() - datetime.timedelta(days=29)
        out = self.call("track_usage_engagement", {"client_id": self.cid("a"),
                                                   "period_start": start.isoformat(),
                                                   "period_end": today().isoformat()})
        m = out["engagement_metrics"]
        self.assertEqual((m["avg_daily_active_users"], m["peak_daily_active_users"],
                          m["total_events"], m["active_days"], m["seat_utilization"]),
                         (8, 8, 1200, 30, 0.8))
        self.assertEqual(out["usage_trend"]["direction"], "flat")
        self.assertEqual(len(out["usage_series"]), 30)
        self.assertEqual(out["feature_breakdown"][0]["feature_id"], self.p + "_dash")
        wk = self.call("track_usage_engagement", {"client_id": self.cid("a"), "granularity": "weekly"})
        self.assertLessEqual(len(wk["usage_series"]), 6)
        b = self.call("track_usage_engagement", {"client_id": self.cid("b")})
        self.assertEqual(b["usage_trend"]["direction"], "down")
        self.assertIn("usage_declining", [x["type"] for x in b["alerts"]])

    def test_ingest_idempotent_and_feeds_health(self):
        c = self.cid("c")
        now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
        ts = (now - datetime.timedelta(minutes=5)).isoformat().replace("+00:00", "Z")
        ev = [{"event_id": self.p + "-ev1", "client_id": c, "occurred_at": ts, "user_id": "u1",
               "feature": self.p + "_new"},
              {"event_id": self.p + "-ev2", "client_id": c, "occurred_at": ts, "user": "u2",
               "feature": self.p + "_new", "quantity": 3},
              {"event_id": self.p + "-ev3", "client_id": c, "occurred_at": ts, "user_id": "u1",
               "feature": self.p + "_new"}]
        out = self.call("ingest_usage_events", {"events": ev})
        self.assertEqual((out["received"], out["inserted"], out["duplicates"],
                          out["features_registered"], out["accounts_affected"]), (3, 3, 0, 1, 1))
        again = self.call("ingest_usage_events", {"events": ev[:2]})
        self.assertEqual((again["inserted"], again["duplicates"]), (0, 2))
        day = lib.psql(self.url, "SELECT active_users || '|' || events FROM usage_daily WHERE "
                      "client_id = '%s'" % c)
        self.assertEqual(day, "2|3")  # 2 distinct users, 3 events, duplicates not counted
        bad = ev[:1] + [{"event_id": self.p + "-ev9", "client_id": self.p + "_nobody",
                         "occurred_at": ts, "user_id": "u", "feature": "f"}]
        text = self.fail_text("ingest_usage_events", {"events": bad})
        self.assertIn("nothing was stored", text)
        self.assertIn("events[1]: client not found", text)
        self.assertEqual(lib.psql(self.url, "SELECT count(*) FROM usage_events WHERE event_id = "
                                 "'%s-ev9'" % self.p), "0")
        h = self.call("calculate_health_score", {"client_id": c})
        self.assertEqual(h["component_scores"]["engagement"], 95)  # used today

    def test_segment_customers_persisted(self):
        out = self.call("segment_customers", {
            "segmentation_type": "custom", "min_segment_size": 1,
            "criteria": {"industry": "Industry " + self.p, "name": "Fixture " + self.p,
                         "min_arr": 1}})
        self.assertEqual(out["segments_created"], 1)
        seg = out["segments"][0]
        self.assertEqual((seg["name"], seg["customer_count"], seg["total_arr"]),
                         ("Fixture " + self.p, 2, 58000))
        members = lib.psql(self.url, "SELECT string_agg(client_id, ',' ORDER BY client_id) FROM "
                          "segment_members WHERE segment_id = '%s'" % seg["segment_id"])
        self.assertEqual(members, "%s,%s" % (self.cid("a"), self.cid("b")))
        big = self.call("segment_customers", {
            "segmentation_type": "custom", "min_segment_size": 5,
            "criteria": {"industry": "Industry " + self.p}})
        self.assertEqual(big["segments_created"], 0)  # 3 accounts < min_segment_size
        self.assertIn("needs criteria", self.fail_text("segment_customers",
                                                       {"segmentation_type": "custom"}))

    def test_feature_adoption(self):
        out = self.call("track_feature_adoption", {"client_id": self.cid("a"),
                                                   "time_period_days": 90})
        f = {x["feature_id"]: x for x in out["features"]}
        dash, rep = f[self.p + "_dash"], f[self.p + "_rep"]
        self.assertEqual((dash["days_used"], dash["adoption_rate"], dash["status"]),
                         (30, 0.333, "adopted"))
        self.assertEqual((rep["days_used"], rep["adoption_rate"], rep["status"]),
                         (15, 0.167, "underutilized"))
        self.assertIn(self.p + "_rep", out["underutilized_features"])
        self.assertEqual(rep["new_adopters"], 1)  # first used 14 days ago
        one = self.call("track_feature_adoption", {"feature_id": self.p + "_dash"})
        self.assertEqual(len(one["features"]), 1)
        self.assertEqual(one["features"][0]["accounts_using"], 1)

    def test_lifecycle_transition_recorded(self):
        a = self.cid("a")
        out = self.call("manage_lifecycle_stages", {"client_id": a, "new_stage": "at_risk",
                                                    "reason": "fixture test"})
        self.assertEqual(out["transition_performed"]["from_stage"], "active")
        self.assertEqual(out["transition_performed"]["to_stage"], "at_risk")
        self.assertEqual(out["client"]["current_stage"], "at_risk")
        self.assertEqual(out["client"]["history"][-1]["reason"], "fixture test")
        self.assertEqual(lib.psql(self.url, "SELECT lifecycle_stage FROM accounts WHERE client_id "
                                 "= '%s'" % a), "at_risk")
        self.assertIn("already in stage", self.fail_text(
            "manage_lifecycle_stages", {"client_id": a, "new_stage": "at_risk"}))
        back = self.call("manage_lifecycle_stages", {"client_id": a, "new_stage": "active"})
        self.assertEqual(back["transition_performed"]["from_stage"], "at_risk")
        dist = self.call("manage_lifecycle_stages", {})
        self.assertEqual(sum(dist["stage_distribution"].values()), dist["total_customers"])

    def test_adoption_milestones(self):
        out = self.call("track_adoption_milestones", {"client_id": self.cid("a")})
        ms = {m["milestone"]: m for m in out["milestones"]}
        first_day = (today() - datetime.timedelta(days=89)).isoformat()
        self.assertEqual(out["start_date"], (today() - datetime.timedelta(days=100)).isoformat())
        self.assertEqual((ms["m1"]["achieved_on"], ms["m1"]["days_to_achieve"], ms["m1"]["status"]),
                         (first_day, 11, "achieved_late"))
        # DAU 8 >= 50% of 10 seats from the first day
        self.assertEqual((ms["m3"]["achieved_on"], ms["m3"]["status"]),
                         (first_day, "achieved_on_time"))
        self.assertEqual((ms["m2"]["achieved_on"], ms["m2"]["status"]), (None, "overdue"))
        self.assertEqual((ms["m7"]["achieved_on"], ms["m7"]["status"]), (None, "in_progress"))
        self.assertEqual(ms["m5"]["status"], "overdue")  # no integration, 100 > 45 days
        self.assertEqual(out["total_milestones"], 8)
        # The set-based portfolio version agrees with the per-account one on every account.
        self.assertEqual(lib.psql(self.url, (
            "SELECT count(*) FROM csmcp.adoption_milestones_all() x "
            "JOIN LATERAL csmcp.adoption_milestones_of(x.client_id) y ON y.milestone = x.milestone "
            "WHERE x.achieved_on IS DISTINCT FROM y.achieved_on OR x.acc_start <> "
            "csmcp.account_start(x.client_id)")), "0")
        portfolio = self.call("track_adoption_milestones", {})
        self.assertEqual(len(portfolio["completion_rates"]), 8)
        custom = self.call("track_adoption_milestones", {
            "client_id": self.cid("a"), "milestone_framework": "custom",
            "custom_milestones": [{"key": "sso", "name": "SSO enabled", "target_days": 10}]})
        self.assertEqual(custom["milestones"][0]["status"], "overdue")

    def test_value_tiers(self):
        out = self.call("segment_by_value_tier", {"segmentation_criteria": {}})
        dist = out["tier_distribution"]
        self.assertEqual(sum(t["customer_count"] for t in dist.values()), out["total_customers"])
        self.assertAlmostEqual(sum(t["total_arr"] for t in dist.values()), out["total_arr"], 2)
        seg = lib.psql(self.url, "SELECT s.name FROM segment_members m JOIN segments s USING "
                      "(segment_id) WHERE s.segmentation_id = '%s' AND m.client_id = '%s'"
                      % (out["segmentation_id"], self.cid("a")))
        self.assertEqual(seg, "professional")  # 50000 >= 50000
        risky = {x["client_id"] for x in out["downgrade_risks"]}
        self.assertNotIn(self.cid("a"), risky)

    def test_engagement_patterns_find_anomaly(self):
        out = self.call("analyze_engagement_patterns", {
            "analysis_scope": "individual", "scope_filter": {"client_id": self.cid("a")}})
        self.assertEqual(out["customers_analyzed"], 1)
        spike = out["anomalies"][0]
        self.assertEqual((spike["client_id"], spike["day"], spike["value"], spike["kind"]),
                         (self.cid("a"), (today() - datetime.timedelta(days=45)).isoformat(),
                          40, "spike"))
        self.assertGreater(spike["z_score"], 9)
        self.assertEqual(len(out["anomalies"]), 1)
        pats = {p["pattern"]: p["accounts"] for p in out["identified_patterns"]}
        self.assertEqual(pats["flat_usage"], 1)
        b = self.call("analyze_engagement_patterns", {
            "analysis_scope": "individual", "scope_filter": {"client_id": self.cid("b")},
            "pattern_types": ["support"]})
        self.assertEqual(b["support_patterns"]["tickets"], 12)
        self.assertIsNone(b["temporal_patterns"])

    # ------------------------------------------------------------ concurrency

    def test_concurrent_register_and_update(self):
        import threading
        ids, errs = [], []
        lock = threading.Lock()

        def register():
            s = self.d.session()
            try:
                r = s.call_tool("register_client", {"client_name": "Race Corp",
                                                    "company_name": "Race Co"})
                with lock:
                    (errs if r.get("isError") else ids).append(
                        r["content"][0]["text"] if r.get("isError") else
                        r["structuredContent"]["client_id"])
            finally:
                s.close()

        threads = [threading.Thread(target=register) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertEqual(errs, [])
        self.assertEqual(len(set(ids)), 6)

        cid = ids[0]

        def update(seats):
            s = self.d.session()
            try:
                s.call_ok("update_client_info", {"client_id": cid,
                                                 "updates": {"licensed_seats": seats}})
            finally:
                s.close()

        threads = [threading.Thread(target=update, args=(n,)) for n in range(11, 19)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        # Every recorded old value is the new value of the update before it: no lost update.
        rows = lib.psql(self.url, "SELECT coalesce(old_values->>'licensed_seats', 'null') || ':' || "
                       "(new_values->>'licensed_seats') FROM activity_log WHERE client_id = '%s' "
                       "AND action = 'update_client_info' ORDER BY activity_id" % cid).split()
        self.assertEqual(len(rows), 8)
        chain = [r.split(":") for r in rows]
        self.assertEqual(chain[0][0], "null")
        for prev, cur in zip(chain, chain[1:]):
            self.assertEqual(cur[0], prev[1])
