"""The seven retention & risk tools (issue 13) through csmcpd over MCP, on hand-computed fixtures:
exact values for every formula (risk factors, overall, levels, probability clamp; NPS, CSAT, CES
and their period change; escalation SLA states; campaign actions and targets; post-mortem warning
signs, dates and missed interventions), identify_churn_risk's summary against a from-scratch SQL
count, validation errors (-32602), not-found and state-machine refusals (isError), scope refusal
with a read-only key, and concurrent writers."""
import datetime
import random
import threading

import data_util as du
import lib
import sec_util as su

TOOLS = ["identify_churn_risk", "execute_retention_campaign", "monitor_satisfaction",
         "manage_escalations", "analyze_churn_postmortem", "score_risk_factors",
         "automate_retention_campaigns"]


def today():
    return datetime.datetime.now(datetime.timezone.utc).date()


def months_between(a, b):
    """Calendar months from a to b as PostgreSQL's age(): years x 12 + months."""
    return (b.year - a.year) * 12 + (b.month - a.month) - (1 if b.day < a.day else 0)


class RetentionToolsTest(lib.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.url = lib.database_url()
        cls.p = du.prefix()
        cls.n = random.randint(10000000, 80000000)  # escalation ids of this run: esc_<n + k>
        du.psql(cls.url, cls.fixture_sql())
        cls.d = lib.Csmcpd(workers=2).start()
        cls.s = cls.d.session()
        tools = cls.s.list_tools()
        cls.schemas = {t["name"]: t.get("outputSchema") for t in tools}

    @classmethod
    def tearDownClass(cls):
        cls.s.close()
        cls.d.stop()

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
        """Arguments the inputSchema rejects: -32602, or (as this server answers) an isError
        result naming the argument, before any SQL runs."""
        try:
            r = self.s.call_tool(name, args)
        except lib.McpError as e:
            self.assertEqual(e.code, -32602, "%s(%s)" % (name, args))
            return
        self.assertTrue(r.get("isError"), "%s(%s) should be rejected: %s" % (name, args, r))
        text = r["content"][0]["text"]
        self.assertIn("Invalid arguments for tool %s" % name, text)
        if where:
            self.assertIn("arguments." + where, text)

    def q(self, sql):
        return du.psql(self.url, sql)

    # ------------------------------------------------------------ fixture

    @classmethod
    def fixture_sql(cls):
        p, c = cls.p, cls.cid
        acc = lambda k, **kw: (
            "INSERT INTO accounts (client_id, client_name, company_name, tier, lifecycle_stage, status, "
            "csm_assigned, health_score, health_trend, created_at) VALUES ('%s', '%s', 'Fixture', '%s', '%s', "
            "'%s', 'Rita CSM', %d, '%s', %s);" % (
                c(k), kw.get("name", k.upper()), kw.get("tier", "standard"), kw.get("stage", "active"),
                kw.get("status", "active"), kw.get("health", 70), kw.get("trend", "stable"),
                kw.get("created", "now() - interval '400 days'")))
        ctr = lambda k, end, seats=10, value=12000, status="active", start="csmcp.today() - 300": (
            "INSERT INTO contracts (contract_id, client_id, tier, contract_value, licensed_seats, start_date, "
            "end_date, status) VALUES ('CTR-%s', '%s', 'standard', %s, %d, %s, %s, '%s');"
            % (c(k), c(k), value, seats, start, end, status))
        s = []
        # R1: usage 50 (5 of 10 seats), engagement 95, support 84 (2 tickets, 1 P1), satisfaction
        # 62.5 (NPS 10 9 7 3), payment 50 (overdue, renewal in 20 days), contract 100.
        s += [acc("r1"), ctr("r1", "csmcp.today() + 20"),
              "INSERT INTO usage_daily (client_id, day, active_users, events) SELECT '%s', csmcp.today() - k, 5, 5 "
              "FROM generate_series(0, 29) k;" % c("r1"),
              "INSERT INTO support_tickets (ticket_id, client_id, subject, description, priority, requester_email, "
              "requester_name, sla_first_response_minutes, sla_resolution_minutes, created_at) VALUES "
              "('TKT-%d', '%s', 's', 'd', 'P1', 'a@b.co', 'A', 15, 240, now() - interval '2 days'),"
              "('TKT-%d', '%s', 's', 'd', 'P3', 'a@b.co', 'A', 240, 2880, now() - interval '3 days');"
              % (cls.n * 10 + 1, c("r1"), cls.n * 10 + 2, c("r1")),
              "INSERT INTO nps_responses (response_id, client_id, score, responded_at) VALUES "
              "('%s-n1', '%s', 10, now() - interval '1 day'), ('%s-n2', '%s', 9, now() - interval '2 days'),"
              "('%s-n3', '%s', 7, now() - interval '3 days'), ('%s-n4', '%s', 3, now() - interval '4 days');"
              % (p, c("r1"), p, c("r1"), p, c("r1"), p, c("r1")),
              "INSERT INTO invoices (invoice_id, contract_id, client_id, amount, issued_on, due_on) VALUES "
              "('INV-%s', 'CTR-%s', '%s', 3000, csmcp.today() - 60, csmcp.today() - 30);" % (c("r1"), c("r1"), c("r1"))]
        # R2: everything healthy -> overall 1, low, probability clamped to 0.05.
        s += [acc("r2"), ctr("r2", "csmcp.today() + 200"),
              "INSERT INTO usage_daily (client_id, day, active_users, events) SELECT '%s', csmcp.today() - k, 10, 10 "
              "FROM generate_series(0, 29) k;" % c("r2"),
              "INSERT INTO nps_responses (response_id, client_id, score, responded_at) VALUES "
              "('%s-m1', '%s', 10, now() - interval '1 day'), ('%s-m2', '%s', 9, now() - interval '2 days');"
              % (p, c("r2"), p, c("r2"))]
        # R3: usage 0 (last use 40 days ago), engagement 30, support 50 (10 tickets, 2 P0/P1),
        # satisfaction 0 (NPS -100), payment 30, contract 100 -> overall 82, critical, 0.82.
        s += [acc("r3"), ctr("r3", "csmcp.today() + 10"),
              "INSERT INTO usage_daily (client_id, day, active_users, events) VALUES ('%s', csmcp.today() - 40, 9, 9);" % c("r3"),
              "INSERT INTO support_tickets (ticket_id, client_id, subject, description, priority, requester_email, "
              "requester_name, sla_first_response_minutes, sla_resolution_minutes, created_at) "
              "SELECT 'TKT-' || (%d + k), '%s', 's', 'd', CASE WHEN k <= 2 THEN 'P0' ELSE 'P3' END, 'a@b.co', 'A', 5, 60, "
              "now() - make_interval(days => k) FROM generate_series(1, 10) k;" % (cls.n * 10 + 100, c("r3")),
              "INSERT INTO nps_responses (response_id, client_id, score, responded_at) VALUES "
              "('%s-o1', '%s', 0, now() - interval '1 day'), ('%s-o2', '%s', 3, now() - interval '2 days');"
              % (p, c("r3"), p, c("r3")),
              "INSERT INTO invoices (invoice_id, contract_id, client_id, amount, issued_on, due_on, paid_on) VALUES "
              "('INV-%s-1', 'CTR-%s', '%s', 3000, csmcp.today() - 150, csmcp.today() - 120, csmcp.today() - 100),"
              "('INV-%s-2', 'CTR-%s', '%s', 3000, csmcp.today() - 60, csmcp.today() - 30, NULL);"
              % (c("r3"), c("r3"), c("r3"), c("r3"), c("r3"), c("r3"))]
        # Contract-risk cases: renewal in 20 days decided (won) -> 50; in 90 -> 50; in 91 -> 0;
        # in 30 undecided -> 100; no active contract -> 0.
        s += [acc("k20won"), ctr("k20won", "csmcp.today() + 20"),
              "INSERT INTO renewals (renewal_id, contract_id, client_id, renewal_date, status, current_arr) VALUES "
              "('REN-%s', 'CTR-%s', '%s', csmcp.today() + 20, 'won', 12000);" % (c("k20won"), c("k20won"), c("k20won")),
              acc("k90"), ctr("k90", "csmcp.today() + 90"), acc("k91"), ctr("k91", "csmcp.today() + 91"),
              acc("k30"), ctr("k30", "csmcp.today() + 30"), acc("knone")]
        # K: identify_churn_risk. Health 45 now, 60 stored 80 days ago; renewal in 60 days, ARR 50000.
        s += [acc("k", health=45, trend="stable", tier="enterprise"), ctr("k", "csmcp.today() + 60", value=50000),
              "INSERT INTO health_scores (client_id, calculated_at, usage_score, engagement_score, support_score, "
              "satisfaction_score, payment_score, overall_score, trend, risk_level, churn_probability, lookback_days) VALUES "
              "('%s', now() - interval '80 days', 60, 60, 60, 60, 60, 60, 'stable', 'high', 0.40, 30),"
              "('%s', now() - interval '1 hour', 40, 60, 90, 50, 100, 45, 'declining', 'critical', 0.55, 30);"
              % (c("k"), c("k")),
              "INSERT INTO risk_indicators (client_id, score_id, indicator, severity, current_value, threshold) "
              "SELECT client_id, score_id, 'risk_low_usage', 'high', 40, 75 FROM health_scores WHERE client_id = '%s' "
              "AND overall_score = 45;" % c("k")]
        # S: satisfaction. Current 30 days: NPS 10 9 8 6 3 (3 at 29.9 days), CSAT 5 4 4, CES 2 3;
        # previous 30 days: NPS 9 9 7 (one at 30.1 days), CSAT 3; older (61 days) ignored.
        nps = [("s1", 10, "1 day"), ("s2", 9, "2 days"), ("s3", 8, "3 days"), ("s4", 6, "4 days"),
               ("s5", 3, "29.9 days"), ("s6", 9, "30.1 days"), ("s7", 9, "45 days"), ("s8", 7, "59 days"),
               ("s9", 0, "61 days")]
        s += [acc("s"),
              "INSERT INTO nps_responses (response_id, client_id, score, reason, responded_at) VALUES " +
              ", ".join("('%s-%s', '%s', %d, 'r%s', now() - interval '%s')" % (p, r, c("s"), sc, r, ago)
                        for r, sc, ago in nps) + ";",
              "INSERT INTO csat_responses (response_id, client_id, survey_type, score, responded_at) VALUES "
              "('%s-c1', '%s', 'csat', 5, now() - interval '1 day'), ('%s-c2', '%s', 'csat', 4, now() - interval '2 days'),"
              "('%s-c3', '%s', 'csat', 4, now() - interval '20 days'), ('%s-c4', '%s', 'csat', 3, now() - interval '40 days'),"
              "('%s-c5', '%s', 'ces', 2, now() - interval '3 days'), ('%s-c6', '%s', 'ces', 3, now() - interval '4 days');"
              % tuple(x for _ in range(6) for x in (p, c("s")))]
        # C: churned on D = today - 40 (transition at 12:00 UTC); see test_postmortem_exact.
        D = "(csmcp.today() - 40)"
        at = lambda off, hour=10: "((%s + (%d))::timestamp + interval '%d hours') AT TIME ZONE 'UTC'" % (D, off, hour)
        s += [acc("c", stage="churned", status="churned", health=35, created="(csmcp.today() - 400)::timestamp AT TIME ZONE 'UTC'"),
              ctr("c", "csmcp.today() - 35", status="cancelled", start="csmcp.today() - 400"),
              "INSERT INTO lifecycle_transitions (client_id, from_stage, to_stage, changed_at) VALUES "
              "('%s', NULL, 'onboarding', %s), ('%s', 'active', 'churned', %s);" % (c("c"), at(-360), c("c"), at(0, 12)),
              "INSERT INTO invoices (invoice_id, contract_id, client_id, amount, issued_on, due_on, paid_on) VALUES "
              "('INV-%(c)s-1', 'CTR-%(c)s', '%(c)s', 3000, csmcp.today() - 400, csmcp.today() - 370, csmcp.today() - 372),"
              "('INV-%(c)s-2', 'CTR-%(c)s', '%(c)s', 3000, csmcp.today() - 309, csmcp.today() - 279, csmcp.today() - 270),"
              "('INV-%(c)s-3', 'CTR-%(c)s', '%(c)s', 3000, csmcp.today() - 218, csmcp.today() - 188, csmcp.today() - 190),"
              "('INV-%(c)s-4', 'CTR-%(c)s', '%(c)s', 3000, csmcp.today() - 127, csmcp.today() - 97, NULL);" % {"c": c("c")},
              "INSERT INTO health_scores (client_id, calculated_at, usage_score, engagement_score, support_score, "
              "satisfaction_score, payment_score, overall_score, trend, risk_level, churn_probability, lookback_days) VALUES "
              "('%(c)s', %(a)s, 70, 70, 70, 70, 70, 72, 'stable', 'medium', 0.28, 30),"
              "('%(c)s', %(b)s, 50, 50, 50, 50, 50, 58, 'declining', 'high', 0.42, 30),"
              "('%(c)s', %(d)s, 40, 40, 40, 40, 40, 45, 'declining', 'critical', 0.55, 30),"
              "('%(c)s', %(e)s, 40, 40, 40, 40, 40, 40, 'declining', 'critical', 0.60, 30);"
              % {"c": c("c"), "a": at(-100), "b": at(-60), "d": at(-30), "e": at(5)},
              "INSERT INTO usage_daily (client_id, day, active_users, events) SELECT '%s', %s - k, "
              "CASE WHEN k < 30 THEN 5 ELSE 10 END, 1 FROM generate_series(0, 59) k;" % (c("c"), D),
              "INSERT INTO support_tickets (ticket_id, client_id, subject, description, priority, requester_email, "
              "requester_name, sla_first_response_minutes, sla_resolution_minutes, created_at) VALUES "
              "('TKT-%d', '%s', 'outage', 'd', 'P1', 'a@b.co', 'A', 15, 240, %s),"
              "('TKT-%d', '%s', 'question', 'd', 'P3', 'a@b.co', 'A', 240, 2880, %s),"
              "('TKT-%d', '%s', 'old outage', 'd', 'P0', 'a@b.co', 'A', 5, 60, %s);"
              % (cls.n * 10 + 201, c("c"), at(-50), cls.n * 10 + 202, c("c"), at(-45), cls.n * 10 + 203, c("c"), at(-370)),
              "INSERT INTO nps_responses (response_id, client_id, score, responded_at) VALUES "
              "('%s-p1', '%s', 4, %s), ('%s-p2', '%s', 8, %s), ('%s-p3', '%s', 6, %s);"
              % (p, c("c"), at(-20), p, c("c"), at(-25), p, c("c"), at(-10)),
              "INSERT INTO escalations (escalation_id, client_id, severity, status, summary, sla_hours, opened_at) VALUES "
              "('esc_%d', '%s', 'high', 'open', 'churn risk', 24, %s);" % (cls.n + 900, c("c"), at(-46)),
              "INSERT INTO communications (client_id, channel, direction, subject, occurred_at, status) VALUES "
              "('%(c)s', 'email', 'inbound', 'complaint', %(a)s, 'sent'),"
              "('%(c)s', 'email', 'outbound', 'bounced one', %(b)s, 'failed'),"
              "('%(c)s', 'email', 'outbound', 'check-in', %(d)s, 'sent');"
              % {"c": c("c"), "a": at(-25), "b": at(-20), "d": at(-14)}]
        # C2: churned without a recorded transition.
        s += [acc("c2", stage="churned", status="churned", created="(csmcp.today() - 200)::timestamp AT TIME ZONE 'UTC'")]
        # E: escalations with known elapsed times (see test_escalation_sla_states).
        s += [acc("e"), acc("e2")]
        esc = [(1, "critical", "open", "3 hours", None), (2, "critical", "open", "3.5 hours", None),
               (3, "critical", "in_progress", "4.5 hours", None), (4, "high", "open", "19 hours", None),
               (5, "high", "open", "19.5 hours", None), (6, "low", "open", "25 hours", None),
               (7, "critical", "resolved", "10 hours", "4 hours"), (8, "critical", "resolved", "10 hours", "4 hours 1 minute"),
               (9, "medium", "closed", "30 hours", "23 hours")]
        rows = []
        for k, sev, st, ago, took in esc:
            opened = "now() - interval '%s'" % ago
            res = "(%s) + interval '%s'" % (opened, took) if took else "NULL"
            closed = "(%s) + interval '%s' + interval '1 hour'" % (opened, took) if st == "closed" else "NULL"
            rows.append("('esc_%d', '%s', '%s', '%s', 'fixture %d', %d, %s, %s, %s)"
                        % (cls.n + k, c("e"), sev, st, k, 4 if sev == "critical" else 24, opened, res, closed))
        s += ["INSERT INTO escalations (escalation_id, client_id, severity, status, summary, sla_hours, opened_at, "
              "resolved_at, closed_at) VALUES " + ", ".join(rows) + ";"]
        # M: campaigns; U: usage decline of exactly 30 % (300 -> 210 active-user days).
        s += [acc("m", health=55), acc("m2", health=90), acc("u", health=80),
              "INSERT INTO usage_daily (client_id, day, active_users, events) SELECT '%s', csmcp.today() - k, "
              "CASE WHEN k < 30 THEN 7 ELSE 10 END, 1 FROM generate_series(0, 59) k;" % c("u")]
        return "\n".join(s)

    # ------------------------------------------------------------ registry

    def test_registry_lists_the_seven_tools(self):
        for name in TOOLS:
            self.assertIsInstance(self.schemas.get(name), dict, name)

    # ------------------------------------------------------------ score_risk_factors

    def factors(self, k):
        out = self.call("score_risk_factors", {"client_id": self.cid(k)})
        return out, {f["factor"]: f for f in out["risk_factors"]}

    def test_risk_factors_exact(self):
        out, f = self.factors("r1")
        self.assertEqual([x["factor"] for x in out["risk_factors"]],
                         ["usage_decline", "engagement_low", "support_volume", "payment_health",
                          "satisfaction", "contract_health"])
        self.assertEqual({k: v["weight"] for k, v in f.items()},
                         {"usage_decline": 0.25, "engagement_low": 0.20, "support_volume": 0.15,
                          "payment_health": 0.15, "satisfaction": 0.15, "contract_health": 0.10})
        self.assertEqual({k: v["risk_score"] for k, v in f.items()},
                         {"usage_decline": 50, "engagement_low": 5, "support_volume": 16,
                          "payment_health": 50, "satisfaction": 37.5, "contract_health": 100})
        self.assertEqual(f["satisfaction"]["component_score"], 62.5)
        self.assertEqual(f["satisfaction"]["weighted_risk"], 5.63)  # 5.625 shown to 2 decimals
        # 12.5 + 1 + 2.4 + 7.5 + 5.625 + 10 = 39.025
        self.assertEqual((out["overall_risk_score"], out["risk_level"], out["churn_probability"]),
                         (39, "medium", 0.39))
        self.assertEqual([(w["factor"], w["severity"]) for w in out["early_warning_indicators"]],
                         [("contract_health", "critical"), ("usage_decline", "high"), ("payment_health", "high")])
        self.assertEqual(sorted(out["protective_factors"]), ["engagement_low", "support_volume"])
        self.assertEqual(len(out["recommended_actions"]), 3)
        row = self.q("SELECT overall_risk_score || '|' || risk_level || '|' || churn_probability || '|' || assessed_by "
                     "FROM risk_assessments WHERE assessment_id = '%s'" % out["assessment_id"])
        self.assertEqual(row, "39|medium|0.39|anonymous")
        self.assertEqual(self.q("SELECT count(*) FROM activity_log WHERE entity = 'risk_assessment' AND entity_id = '%s'"
                                % out["assessment_id"]), "1")

        out, f = self.factors("r2")
        self.assertEqual({k: v["risk_score"] for k, v in f.items()},
                         {"usage_decline": 0, "engagement_low": 5, "support_volume": 0,
                          "payment_health": 0, "satisfaction": 0, "contract_health": 0})
        self.assertEqual((out["overall_risk_score"], out["risk_level"], out["churn_probability"]), (1, "low", 0.05))
        out, f = self.factors("r3")
        self.assertEqual({k: v["risk_score"] for k, v in f.items()},
                         {"usage_decline": 100, "engagement_low": 70, "support_volume": 50,
                          "payment_health": 70, "satisfaction": 100, "contract_health": 100})
        # 25 + 14 + 7.5 + 10.5 + 15 + 10 = 82
        self.assertEqual((out["overall_risk_score"], out["risk_level"], out["churn_probability"]), (82, "critical", 0.82))

    def test_contract_risk_rule(self):
        for k, want in (("k20won", 50), ("k90", 50), ("k91", 0), ("k30", 100), ("r1", 100), ("knone", 0)):
            _, f = self.factors(k)
            self.assertEqual(f["contract_health"]["risk_score"], want, k)
        _, f = self.factors("knone")  # no contract: usage 50, engagement 50, support 100, sat 70, payment 85
        self.assertEqual([f[x]["risk_score"] for x in ("usage_decline", "engagement_low", "support_volume",
                                                       "payment_health", "satisfaction")], [50, 50, 0, 15, 30])

    def test_risk_level_and_probability_boundaries(self):
        cases = {100: ("critical", "0.95"), 96: ("critical", "0.95"), 95: ("critical", "0.95"),
                 75: ("critical", "0.75"), 74: ("high", "0.74"), 50: ("high", "0.50"), 49: ("medium", "0.49"),
                 25: ("medium", "0.25"), 24: ("low", "0.24"), 5: ("low", "0.05"), 4: ("low", "0.05"), 0: ("low", "0.05")}
        got = self.q("SELECT string_agg(v || '=' || csmcp.retention_risk_level(v) || '/' || csmcp.retention_risk_probability(v), ',' "
                     "ORDER BY v) FROM unnest(ARRAY[%s]) v" % ",".join(map(str, cases)))
        want = ",".join("%d=%s/%s" % (v, cases[v][0], cases[v][1]) for v in sorted(cases))
        self.assertEqual(got, want)

    # ------------------------------------------------------------ monitor_satisfaction

    def test_satisfaction_exact(self):
        out = self.call("monitor_satisfaction", {"client_id": self.cid("s"), "time_period_days": 30})
        cur, prev = out["current_period"], out["previous_period"]
        self.assertEqual((cur["nps_responses"], cur["promoters"], cur["passives"], cur["detractors"]), (5, 2, 1, 2))
        self.assertEqual((cur["nps"], cur["promoters_pct"], cur["passives_pct"], cur["detractors_pct"]),
                         (0.0, 40.0, 20.0, 40.0))
        self.assertEqual((cur["csat"], cur["csat_responses"], cur["ces"], cur["ces_responses"]), (4.33, 3, 2.5, 2))
        self.assertEqual((prev["nps"], prev["nps_responses"], prev["csat"], prev["csat_responses"], prev["ces"]),
                         (66.7, 3, 3.0, 1, None))
        self.assertEqual(out["change"], {"nps": -66.7, "csat": 1.33, "ces": None})
        self.assertEqual([(d["response_id"], d["score"]) for d in out["detractors"]],
                         [("%s-s4" % self.p, 6), ("%s-s5" % self.p, 3)])
        self.assertEqual(out["detractors_total"], 2)
        self.assertEqual(out["scope"], "account")
        self.assertIn("NPS 0.0", out["summary"])
        out = self.call("monitor_satisfaction", {"client_id": self.cid("s"), "time_period_days": 30,
                                                 "survey_type": "csat", "detractor_limit": 1})
        self.assertEqual(len(out["detractors"]), 1)
        self.assertEqual(out["detractors_total"], 2)
        self.assertIn("CSAT 4.33", out["summary"])
        # An account without responses: no data, never an invented figure.
        out = self.call("monitor_satisfaction", {"client_id": self.cid("m2")})
        self.assertEqual((out["current_period"]["nps"], out["current_period"]["csat"], out["change"]["nps"]),
                         (None, None, None))
        self.assertIn("no data", out["summary"])

    def test_satisfaction_portfolio_matches_sql(self):
        out = self.call("monitor_satisfaction", {"time_period_days": 60})
        self.assertEqual(out["scope"], "portfolio")
        n = self.q("SELECT count(*) || '|' || count(*) FILTER (WHERE score <= 6) FROM nps_responses "
                   "WHERE responded_at > now() - interval '60 days'")
        self.assertEqual("%d|%d" % (out["current_period"]["nps_responses"], out["current_period"]["detractors"]), n)

    # ------------------------------------------------------------ manage_escalations

    def test_escalation_sla_states(self):
        out = self.call("manage_escalations", {"action": "list", "client_id": self.cid("e"), "limit": 500})
        got = {e["escalation_id"]: e["sla"]["state"] for e in out["escalations"]}
        n = self.n
        self.assertEqual(got, {"esc_%d" % (n + 1): "on_track", "esc_%d" % (n + 2): "at_risk",
                               "esc_%d" % (n + 3): "breached", "esc_%d" % (n + 4): "on_track",
                               "esc_%d" % (n + 5): "at_risk", "esc_%d" % (n + 6): "breached",
                               "esc_%d" % (n + 7): "met", "esc_%d" % (n + 8): "breached",
                               "esc_%d" % (n + 9): "met"})
        self.assertEqual(out["counts"]["by_sla_state"], {"on_track": 2, "at_risk": 2, "breached": 3, "met": 2})
        self.assertEqual(out["counts"]["by_status"], {"open": 5, "in_progress": 1, "resolved": 2, "closed": 1})
        self.assertEqual(out["total_count"], 9)
        # newest first
        self.assertEqual(out["escalations"][0]["escalation_id"], "esc_%d" % (n + 1))
        out = self.call("manage_escalations", {"action": "list", "client_id": self.cid("e"), "severity": "critical",
                                               "status": "resolved"})
        self.assertEqual(sorted(e["escalation_id"] for e in out["escalations"]), ["esc_%d" % (n + 7), "esc_%d" % (n + 8)])

    def test_escalation_lifecycle(self):
        c = self.cid("e2")
        out = self.call("manage_escalations", {"action": "create", "client_id": c})
        e = out["escalation"]
        eid = e["escalation_id"]
        self.assertRegex(eid, r"^esc_[0-9]+$")
        self.assertEqual((e["severity"], e["status"], e["sla_resolution_hours"], e["assigned_to"], e["sla"]["state"]),
                         ("high", "open", 24, "Rita CSM", "on_track"))
        self.assertEqual(e["summary"], "High escalation for E2")
        out = self.call("manage_escalations", {"action": "create", "client_id": c, "severity": "critical",
                                               "summary": "Outage", "assigned_to": "Ines"})
        self.assertEqual((out["escalation"]["sla_resolution_hours"], out["escalation"]["assigned_to"]), (4, "Ines"))
        # close before resolve is refused, naming the state
        self.assertIn("is open; close is allowed only from resolved", self.fail_text(
            "manage_escalations", {"action": "close", "escalation_id": eid}))
        out = self.call("manage_escalations", {"action": "update", "escalation_id": eid, "severity": "critical",
                                               "status": "in_progress"})
        self.assertEqual((out["escalation"]["status"], out["escalation"]["sla_resolution_hours"]), ("in_progress", 4))
        self.assertIn("resolution is required", self.fail_text(
            "manage_escalations", {"action": "resolve", "escalation_id": eid}))
        self.assertIn("use action resolve", self.fail_text(
            "manage_escalations", {"action": "update", "escalation_id": eid, "status": "resolved"}))
        out = self.call("manage_escalations", {"action": "resolve", "escalation_id": eid, "resolution": "Fixed"})
        self.assertEqual((out["escalation"]["status"], out["escalation"]["sla"]["state"]), ("resolved", "met"))
        self.assertIn("is resolved; update is allowed only", self.fail_text(
            "manage_escalations", {"action": "update", "escalation_id": eid, "summary": "x"}))
        self.assertIn("is resolved; resolve is allowed only", self.fail_text(
            "manage_escalations", {"action": "resolve", "escalation_id": eid, "resolution": "again"}))
        out = self.call("manage_escalations", {"action": "close", "escalation_id": eid})
        self.assertEqual(out["escalation"]["status"], "closed")
        self.assertIn("is closed", self.fail_text("manage_escalations", {"action": "close", "escalation_id": eid}))
        log = self.q("SELECT string_agg(action || ':' || coalesce(old_values->>'status', '-') || '>' || (new_values->>'status'), ',' "
                     "ORDER BY activity_id) FROM activity_log WHERE entity = 'escalation' AND entity_id = '%s'" % eid)
        self.assertEqual(log, "create_escalation:->open,update_escalation:open>in_progress,"
                              "resolve_escalation:in_progress>resolved,close_escalation:resolved>closed")
        # errors
        # esc_0: escalation_seq starts at 1001 and the seed uses 90000000+, so it never exists
        self.assertIn("escalation esc_0 not found", self.fail_text(
            "manage_escalations", {"action": "resolve", "escalation_id": "esc_0", "resolution": "x"}))
        self.assertIn("client not found", self.fail_text(
            "manage_escalations", {"action": "create", "client_id": self.p + "_nobody"}))
        self.assertIn("client_id is required", self.fail_text("manage_escalations", {"action": "create"}))
        self.assertIn("escalation_id is required", self.fail_text("manage_escalations", {"action": "close"}))
        self.invalid("manage_escalations", {"action": "delete"}, "action")
        self.invalid("manage_escalations", {"action": "close", "escalation_id": "ESC-12"}, "escalation_id")
        self.invalid("manage_escalations", {"action": "create", "client_id": c, "severity": "urgent"}, "severity")

    def test_escalation_concurrent_resolve(self):
        eid = self.call("manage_escalations", {"action": "create", "client_id": self.cid("e2")})["escalation"]["escalation_id"]
        sessions = [self.d.session() for _ in range(4)]
        results = []

        def go(s, i):
            results.append(s.call_tool("manage_escalations", {"action": "resolve", "escalation_id": eid,
                                                              "resolution": "by %d" % i}))
        ts = [threading.Thread(target=go, args=(s, i)) for i, s in enumerate(sessions)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        for s in sessions:
            s.close()
        self.assertEqual(sum(1 for r in results if not r.get("isError")), 1, results)
        self.assertEqual(self.q("SELECT count(*) FROM activity_log WHERE entity_id = '%s' AND action = 'resolve_escalation'"
                                % eid), "1")

    # ------------------------------------------------------------ execute_retention_campaign

    def test_campaign_launch_actions_targets_outcome(self):
        c = self.cid("m")
        out = self.call("execute_retention_campaign", {"client_id": c, "campaign_type": "value_reinforcement"})
        camp = out["campaign"]
        self.assertRegex(camp["campaign_id"], r"^ret_[0-9]+$")
        self.assertEqual((camp["status"], camp["intervention_level"], camp["owner"], camp["name"]),
                         ("active", "standard", "Rita CSM", "Value Reinforcement - M"))
        self.assertEqual(camp["targets"], {"health_score_at_launch": 55, "target_health_score": 75,
                                           "target_date": (today() + datetime.timedelta(days=30)).isoformat()})
        offs = self.q("SELECT string_agg(action || '+' || (due_at - c.created_at)::text, ',' ORDER BY seq) "
                      "FROM campaign_actions a JOIN retention_campaigns c USING (campaign_id) WHERE campaign_id = '%s'"
                      % camp["campaign_id"])
        self.assertEqual(offs, "executive_outreach+2 days,value_review+7 days,success_planning+14 days")
        self.assertEqual([a["status"] for a in camp["actions"]], ["scheduled"] * 3)
        # a second active campaign of the same type is refused; another type is fine
        self.assertIn("already has an active value_reinforcement campaign", self.fail_text(
            "execute_retention_campaign", {"client_id": c, "campaign_type": "value_reinforcement"}))
        light = self.call("execute_retention_campaign", {"client_id": c, "intervention_level": "light",
                                                         "owner": "Ann"})["campaign"]
        self.assertEqual([a["action"] for a in light["actions"]], ["value_review", "success_planning"])
        self.assertEqual(light["owner"], "Ann")
        aggr = self.call("execute_retention_campaign", {"client_id": c, "intervention_level": "aggressive",
                                                        "campaign_type": "renewal_save"})["campaign"]
        offs = self.q("SELECT string_agg(action || '+' || (due_at - c.created_at)::text, ',' ORDER BY seq) "
                      "FROM campaign_actions a JOIN retention_campaigns c USING (campaign_id) WHERE campaign_id = '%s'"
                      % aggr["campaign_id"])
        self.assertEqual(offs, "escalation+1 day,executive_outreach+2 days,value_review+7 days,success_planning+14 days")
        # actions done, outcome from the account's health now
        cid, aid = camp["campaign_id"], camp["actions"][0]["action_id"]
        out = self.call("execute_retention_campaign", {"action": "complete_action", "campaign_id": cid,
                                                       "action_id": aid, "notes": "call held"})
        self.assertEqual((out["campaign"]["actions"][0]["status"], out["campaign"]["actions"][0]["notes"]), ("done", "call held"))
        self.assertIn("already done", self.fail_text("execute_retention_campaign",
                                                     {"action": "complete_action", "campaign_id": cid, "action_id": aid}))
        self.assertIn("not found in campaign", self.fail_text(
            "execute_retention_campaign", {"action": "complete_action", "campaign_id": cid, "action_id": aggr["actions"][0]["action_id"]}))
        self.q("UPDATE accounts SET health_score = 74 WHERE client_id = '%s'" % c)
        out = self.call("execute_retention_campaign", {"action": "get", "campaign_id": cid})["campaign"]["outcome"]
        self.assertEqual((out["health_change"], out["status"], out["actions_done"], out["actions_total"]),
                         (19, "in_progress", 1, 3))
        self.q("UPDATE accounts SET health_score = 75 WHERE client_id = '%s'" % c)
        out = self.call("execute_retention_campaign", {"action": "complete", "campaign_id": cid})["campaign"]
        self.assertEqual((out["status"], out["outcome"]["health_change"], out["outcome"]["status"]),
                         ("completed", 20, "target_reached"))
        self.q("UPDATE accounts SET health_score = 55 WHERE client_id = '%s'" % c)  # frozen at completion
        out = self.call("execute_retention_campaign", {"action": "get", "campaign_id": cid})["campaign"]
        self.assertEqual(out["outcome"]["health_score_now"], 75)
        self.assertIn("is completed", self.fail_text("execute_retention_campaign", {"action": "complete", "campaign_id": cid}))
        self.assertEqual(self.q("SELECT string_agg(action, ',' ORDER BY activity_id) FROM activity_log WHERE entity_id = '%s'" % cid),
                         "launch_retention_campaign,complete_action_retention_campaign,complete_retention_campaign")
        # errors
        self.assertIn("has churned", self.fail_text("execute_retention_campaign", {"client_id": self.cid("c")}))
        self.assertIn("retention campaign ret_1 not found", self.fail_text(
            "execute_retention_campaign", {"action": "get", "campaign_id": "ret_1"}))
        self.assertIn("client_id is required", self.fail_text("execute_retention_campaign", {}))
        self.assertIn("belongs to", self.fail_text("execute_retention_campaign",
                                                   {"action": "get", "campaign_id": cid, "client_id": self.cid("m2")}))
        self.invalid("execute_retention_campaign", {"client_id": c, "intervention_level": "extreme"}, "intervention_level")
        self.invalid("execute_retention_campaign", {"client_id": c, "campaign_type": "discount"})
        self.invalid("execute_retention_campaign", {"action": "get", "campaign_id": "ret-5"}, "campaign_id")

    def test_campaign_concurrent_launch(self):
        c = self.cid("m2")
        sessions = [self.d.session() for _ in range(4)]
        results = []

        def go(s):
            results.append(s.call_tool("execute_retention_campaign", {"client_id": c, "campaign_type": "success_planning"}))
        ts = [threading.Thread(target=go, args=(s,)) for s in sessions]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        for s in sessions:
            s.close()
        self.assertEqual(sum(1 for r in results if not r.get("isError")), 1, results)
        self.assertEqual(self.q("SELECT count(*) FROM retention_campaigns WHERE client_id = '%s' AND campaign_type = "
                                "'success_planning'" % c), "1")

    # ------------------------------------------------------------ analyze_churn_postmortem

    def test_postmortem_exact(self):
        t = today()
        D = t - datetime.timedelta(days=40)
        d = lambda off: (D + datetime.timedelta(days=off)).isoformat()
        out = self.call("analyze_churn_postmortem", {"client_id": self.cid("c")})
        self.assertEqual((out["churn_date"], out["churn_date_source"]), (D.isoformat(), "lifecycle_transitions"))
        start = t - datetime.timedelta(days=400)
        self.assertEqual(out["customer_since"], start.isoformat())
        self.assertEqual(out["customer_lifetime_days"], 360)
        self.assertEqual(out["customer_lifetime_months"], months_between(start, D))
        self.assertEqual((out["lifetime_value"], out["paid_invoices"], out["arr_at_churn"]), (9000, 3, 12000))
        self.assertEqual([h["score"] for h in out["health_history"]], [72, 58, 45])  # the one after churn left out
        self.assertEqual(out["warning_signs_window"], {"from": d(-364), "to": d(0)})
        signs = [(s["sign"], s["date"], s["intervention_within_14_days"]) for s in out["warning_signs"]]
        self.assertEqual(signs, [
            ("overdue_invoice", (t - datetime.timedelta(days=278)).isoformat(), False),   # paid 9 days late
            ("health_below_60", d(-60), True),        # escalation on d + 14 (inclusive)
            ("overdue_invoice", (t - datetime.timedelta(days=96)).isoformat(), True),    # never paid
            ("critical_ticket", d(-50), True),
            ("usage_decline", d(-29), False),         # the e-mail on d + 15 is too late
            ("detractor_response", d(-20), True),     # inbound and failed messages do not count
            ("detractor_response", d(-10), False)])
        by = {(s["sign"], s["date"]): s for s in out["warning_signs"]}
        self.assertEqual(by[("usage_decline", d(-29))]["detail"],
                         {"active_user_days_previous_30": 300, "active_user_days_last_30": 150, "decline_pct": 50.0})
        self.assertEqual(by[("health_below_60", d(-60))]["detail"], {"first_score_below_60": 58})
        self.assertEqual([i["kind"] for i in by[("health_below_60", d(-60))]["interventions"]], ["escalation"])
        self.assertEqual(by[("detractor_response", d(-20))]["interventions"][0]["what"], "email: check-in")
        self.assertEqual([(m["sign"], m["no_intervention_by"]) for m in out["missed_interventions"]],
                         [("overdue_invoice", (t - datetime.timedelta(days=264)).isoformat()),
                          ("usage_decline", d(-15)), ("detractor_response", d(4))])
        self.assertEqual(out["warning_sign_counts"], {"health_below_60": 1, "usage_decline": 1, "critical_ticket": 1,
                                                      "detractor_response": 2, "overdue_invoice": 2})
        # churn_date must match the recorded one
        self.assertEqual(self.call("analyze_churn_postmortem", {"client_id": self.cid("c"), "churn_date": d(0)})["churn_date"], d(0))
        self.assertIn("does not match the recorded churn date", self.fail_text(
            "analyze_churn_postmortem", {"client_id": self.cid("c"), "churn_date": d(-1)}))

    def test_postmortem_refusals_and_argument_date(self):
        self.assertIn("has not churned (lifecycle stage active)", self.fail_text(
            "analyze_churn_postmortem", {"client_id": self.cid("m")}))
        self.assertIn("no recorded churn date; pass churn_date", self.fail_text(
            "analyze_churn_postmortem", {"client_id": self.cid("c2")}))
        day = (today() - datetime.timedelta(days=10)).isoformat()
        out = self.call("analyze_churn_postmortem", {"client_id": self.cid("c2"), "churn_date": day})
        self.assertEqual((out["churn_date"], out["churn_date_source"], out["lifetime_value"], out["warning_signs"]),
                         (day, "argument", 0, []))
        self.assertIn("client not found", self.fail_text("analyze_churn_postmortem", {"client_id": self.p + "_none"}))
        self.invalid("analyze_churn_postmortem", {})
        self.invalid("analyze_churn_postmortem", {"client_id": self.cid("c2"), "churn_date": "01/02/2026"}, "churn_date")

    # ------------------------------------------------------------ identify_churn_risk

    def test_churn_risk_one_account_exact(self):
        out = self.call("identify_churn_risk", {"client_id": self.cid("k")})
        self.assertEqual(out["risk_summary"]["total_analyzed"], 1)
        self.assertEqual(out["risk_summary"]["total_arr_at_risk"], 50000)
        self.assertEqual(out["risk_summary"]["by_tier"]["enterprise"], 1)
        self.assertEqual(out["risk_summary"]["by_risk_level"]["critical"], 1)
        a = out["at_risk_customers"][0]
        self.assertEqual((a["at_risk"], a["health_score"], a["health_trend"], a["score_change_in_lookback"],
                          a["risk_level"], a["churn_probability"], a["days_until_renewal"], a["arr"]),
                         (True, 45, "declining", -15, "critical", 0.55, 60, 50000))
        self.assertEqual(a["predicted_churn_date"], (today() + datetime.timedelta(days=120)).isoformat())
        self.assertEqual([(i["indicator"], i["severity"]) for i in a["risk_indicators"]], [("risk_low_usage", "high")])
        self.assertEqual([i["component"] for i in a["recommended_interventions"]], ["usage", "satisfaction", "contract"])
        self.assertIn("60 days", a["recommended_interventions"][2]["intervention"])
        # a shorter lookback sees one calculation: the stored trend, no change
        a = self.call("identify_churn_risk", {"client_id": self.cid("k"), "days_lookback": 30,
                                              "include_predictions": False})["at_risk_customers"][0]
        self.assertEqual((a["health_trend"], a["score_change_in_lookback"], a["churn_probability"],
                          a["predicted_churn_date"]), ("stable", None, None, None))
        out = self.call("identify_churn_risk", {"client_id": self.cid("k"), "health_score_threshold": 45})
        self.assertEqual((out["at_risk_customers"][0]["at_risk"], out["risk_summary"]["at_risk_count"],
                          out["risk_summary"]["total_arr_at_risk"]), (False, 0, 0))
        self.assertIn("client not found", self.fail_text("identify_churn_risk", {"client_id": self.p + "_none"}))
        self.invalid("identify_churn_risk", {"health_score_threshold": 101}, "health_score_threshold")
        self.invalid("identify_churn_risk", {"days_lookback": 0})

    def test_churn_risk_summary_equals_sql(self):
        out = self.call("identify_churn_risk", {"limit": 1000})
        want = self.q(
            "SELECT count(*) || '|' || count(*) FILTER (WHERE e.h < 60) || '|' || "
            "coalesce(sum(c.contract_value) FILTER (WHERE e.h < 60), 0) || '|' || "
            "count(*) FILTER (WHERE e.h < 50) || '|' || "
            "count(*) FILTER (WHERE e.h BETWEEN 50 AND 59) || '|' || "
            "count(*) FILTER (WHERE e.h < 60 AND a.tier = 'enterprise') "
            "FROM accounts a LEFT JOIN contracts c ON c.client_id = a.client_id AND c.status = 'active' "
            # the effective score (issue 24): an active manual override, else the computed score
            "CROSS JOIN LATERAL (SELECT coalesce((SELECT o.score FROM health_overrides o WHERE o.client_id = "
            "a.client_id AND o.cleared_at IS NULL AND o.expires_at > now()), a.health_score) AS h) e "
            "WHERE a.lifecycle_stage <> 'churned'")
        s = out["risk_summary"]
        got = "%d|%d|%s|%d|%d|%d" % (s["total_analyzed"], s["at_risk_count"], "%.2f" % s["total_arr_at_risk"],
                                     s["by_risk_level"]["critical"], s["by_risk_level"]["high"], s["by_tier"]["enterprise"])
        self.assertEqual(got, want)
        self.assertEqual(s["at_risk_percentage"], round(s["at_risk_count"] * 100.0 / s["total_analyzed"] + 1e-9, 1))
        self.assertEqual(len(out["at_risk_customers"]), min(1000, s["at_risk_count"]))
        scores = [a["health_score"] for a in out["at_risk_customers"]]
        self.assertEqual(scores, sorted(scores))
        self.assertTrue(all(a["at_risk"] and a["lifecycle_stage"] != "churned" for a in out["at_risk_customers"]))
        self.assertIn(self.cid("k"), [a["client_id"] for a in out["at_risk_customers"]])
        page = self.call("identify_churn_risk", {"limit": 2, "offset": 1})
        self.assertEqual([a["client_id"] for a in page["at_risk_customers"]],
                         [a["client_id"] for a in out["at_risk_customers"][1:3]])
        self.assertEqual(page["risk_summary"], s)

    # ------------------------------------------------------------ automate_retention_campaigns

    def test_automation_rule_and_dry_run(self):
        out = self.call("automate_retention_campaigns", {})
        r = out["automation"]
        self.assertRegex(r["rule_id"], r"^auto_[0-9]+$")
        self.assertEqual((r["trigger_type"], r["threshold"], r["campaign_template"], r["intervention_level"], r["status"]),
                         ("health_score", 60, "standard_intervention", "standard", "active"))
        self.assertEqual([(a["action"], a["delay_hours"]) for a in r["actions"]],
                         [("alert_csm", 0), ("send_email", 1), ("schedule_call", 24), ("escalate", 72)])
        want = self.q("SELECT count(*) FROM accounts WHERE lifecycle_stage <> 'churned' AND health_score < 60")
        self.assertEqual(str(out["dry_run"]["matched_count"]), want)
        self.assertEqual(self.q("SELECT count(*) FROM csmcp.retention_trigger_matches('%s')" % r["rule_id"]), want)
        self.assertEqual(self.q("SELECT trigger_type || '|' || threshold || '|' || status || '|' || lookback_days || '|' || "
                                "check_interval_hours FROM retention_trigger_rules WHERE rule_id = '%s'" % r["rule_id"]),
                         "health_score|60|active|30|24")
        # usage decline: U fell from 300 to 210 active-user days = 30.0 %
        out = self.call("automate_retention_campaigns", {"trigger_type": "usage_decline", "threshold": 30, "match_limit": 1000})
        self.assertEqual(out["automation"]["threshold"], 30)
        m = {x["client_id"]: x for x in out["dry_run"]["matches"]}
        self.assertEqual(m[self.cid("u")]["trigger_value"], 30.0)
        self.assertEqual(m[self.cid("u")]["detail"]["active_user_days_previous"], 300)
        self.assertEqual(m[self.cid("r3")]["trigger_value"], 100.0)  # no usage at all in the recent window
        out = self.call("automate_retention_campaigns", {"trigger_type": "usage_decline", "threshold": 30.1, "match_limit": 1000})
        self.assertNotIn(self.cid("u"), [x["client_id"] for x in out["dry_run"]["matches"]])
        # nps detractor default 6, renewal risk
        out = self.call("automate_retention_campaigns", {"trigger_type": "nps_detractor", "match_limit": 1000,
                                                         "campaign_template": "aggressive_save"})
        self.assertEqual((out["automation"]["threshold"], out["automation"]["intervention_level"]), (6, "aggressive"))
        m = {x["client_id"]: x["trigger_value"] for x in out["dry_run"]["matches"]}
        self.assertEqual((m.get(self.cid("r1")), m.get(self.cid("r3")), m.get(self.cid("r2"))), (3, 0, None))
        out = self.call("automate_retention_campaigns", {"trigger_type": "renewal_risk", "threshold": 71, "match_limit": 1000})
        m = {x["client_id"]: x for x in out["dry_run"]["matches"]}
        self.assertEqual(m[self.cid("k")]["detail"]["days_until_renewal"], 60)
        self.assertIn(self.cid("r1"), m)           # health 70 < 71, renews in 20 days
        self.assertNotIn(self.cid("r2"), m)        # renews in 200 days
        self.assertIn("between 0 and 10", self.fail_text("automate_retention_campaigns",
                                                          {"trigger_type": "nps_detractor", "threshold": 11}))
        self.invalid("automate_retention_campaigns", {"trigger_type": "churn"}, "trigger_type")
        self.invalid("automate_retention_campaigns", {"threshold": 101})
        # the monitor's evaluation (rolled back): matches are launched unless already campaigning
        run = self.q("BEGIN; SELECT (x->>'matched')::int = jsonb_array_length(x->'launched') + jsonb_array_length(x->'skipped') "
                     "FROM csmcp.retention_rule_run('%s', 'test') x; ROLLBACK;" % r["rule_id"])
        self.assertEqual(run, "t")

    # ------------------------------------------------------------ scopes

    def test_read_key_cannot_write(self):
        d = lib.Csmcpd(workers=1, auth=True).start()
        try:
            tok = su.create_key(d.conf_path, "read", "retention-read")
            s = lib.McpSession(d.port, token=tok)
            try:
                st, _, _ = s.request_raw("tools/call", {"name": "manage_escalations",
                                                        "arguments": {"action": "create", "client_id": self.cid("e")}})
                self.assertEqual(st, 403)
                st, _, _ = s.request_raw("tools/call", {"name": "score_risk_factors", "arguments": {"client_id": self.cid("r1")}})
                self.assertEqual(st, 403)
                st, _, _ = s.request_raw("tools/call", {"name": "execute_retention_campaign",
                                                        "arguments": {"client_id": self.cid("m2"), "campaign_type": "renewal_save"}})
                self.assertEqual(st, 403)
                st, _, _ = s.request_raw("tools/call", {"name": "automate_retention_campaigns", "arguments": {}})
                self.assertEqual(st, 403)
                out = s.call_ok("manage_escalations", {"action": "list", "client_id": self.cid("e")})
                self.assertGreaterEqual(out["total_count"], 9)
                s.call_ok("identify_churn_risk", {"client_id": self.cid("k")})
                s.call_ok("monitor_satisfaction", {"client_id": self.cid("s")})
                s.call_ok("analyze_churn_postmortem", {"client_id": self.cid("c")})
            finally:
                s.close()
        finally:
            d.stop()
