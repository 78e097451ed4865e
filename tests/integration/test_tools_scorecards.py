"""The scorecards category (issue 24) through csmcpd over MCP on hand-computed fixtures:
resolve_account (pg_trgm fuzzy lookup: typos, partial names, e-mail domains, ranking, limit,
validation); override_health_score (set, replace, clear, expiry by back-dated rows with no sleep,
validation, audit rows); explain_health_score (contributions summing to the score before rounding,
changes against the stored score, inputs, band, override). The expected similarities are computed here from the trigram definition (the
rules in the tool's JSON), independently of PostgreSQL."""
import datetime
import json
import random
import re
import threading

import data_util as du
import lib


def trigrams(s):
    out = set()
    for w in re.findall(r"[a-z0-9]+", s.lower()):
        w = "  " + w + " "
        out.update(w[i:i + 3] for i in range(len(w) - 2))
    return out


def similarity(a, b):
    ta, tb = trigrams(a), trigrams(b)
    return round(len(ta & tb) / len(ta | tb), 3)


class ScorecardsTest(lib.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.url = lib.database_url()
        cls.p = du.prefix()
        p = cls.p
        t1 = random.randint(900000000, 949999999)
        du.psql(cls.url, (
            "INSERT INTO accounts (client_id, client_name, company_name, tier, lifecycle_stage, "
            "primary_contact_email, csm_assigned, health_score) VALUES "
            "('{p}_1', 'Quandrix Widgets', 'Quandrix Widgets Ltd', 'enterprise', 'active', "
            " 'ops@quandrix.test', 'Sc Csm', 71), "
            "('{p}_2', 'Quandrix Holdings', 'Quandrix Holdings plc', 'starter', 'at_risk', "
            " NULL, NULL, 35), "
            "('{p}_3', 'Vellmora Foods', 'Vellmora Foods Inc', 'standard', 'active', "
            " 'jo@vellmora.test', 'Sc Csm', 60), "
            "('{p}_4', 'Sc Explain', 'Sc Explain', 'standard', 'active', NULL, NULL, 62), "
            "('{p}_5', 'Sc Override', 'Sc Override', 'standard', 'active', NULL, NULL, 70);"
            # p_4: no contract (usage 50, payment 85), no usage (engagement 50), 2 P1 tickets
            # (support 100 - 6 - 20 = 74), NPS 10 and 3 (NPS 0, satisfaction 50)
            "INSERT INTO support_tickets (ticket_id, client_id, subject, description, priority, "
            " requester_email, requester_name, sla_first_response_minutes, sla_resolution_minutes) "
            "VALUES ('TKT-{t1}', '{p}_4', 's', 'd', 'P1', 'a@b.test', 'A', 60, 600), "
            "       ('TKT-{t2}', '{p}_4', 's', 'd', 'P1', 'a@b.test', 'A', 60, 600);"
            "INSERT INTO nps_responses (response_id, client_id, score) VALUES "
            "('{p}_n1', '{p}_4', 10), ('{p}_n2', '{p}_4', 3);"
            # the stored score explain compares with: 60/75/94/70/85 at the default weights
            "INSERT INTO health_scores (client_id, calculated_at, usage_score, engagement_score, "
            " support_score, satisfaction_score, payment_score, overall_score, trend, risk_level, "
            " churn_probability, lookback_days) VALUES "
            "('{p}_4', now() - interval '1 day', 60, 75, 94, 70, 85, 69, 'stable', 'medium', 0.31, 30);"
            # movers: baselines 8 days old (m5's only 3 days: no baseline for days = 7)
            "INSERT INTO accounts (client_id, client_name, company_name, health_score) VALUES "
            "('{p}_m1', 'Sc M1', 'Sc M1', 40), ('{p}_m2', 'Sc M2', 'Sc M2', 70), "
            "('{p}_m3', 'Sc M3', 'Sc M3', 69), ('{p}_m4', 'Sc M4', 'Sc M4', 50), "
            "('{p}_m5', 'Sc M5', 'Sc M5', 10);"
            "INSERT INTO health_scores (client_id, calculated_at, usage_score, engagement_score, "
            " support_score, satisfaction_score, payment_score, overall_score, trend, risk_level, "
            " churn_probability, lookback_days) VALUES "
            "('{p}_m1', now() - interval '8 days', 60, 75, 94, 70, 85, 60, 'stable', 'high', 0.4, 30), "
            "('{p}_m1', now() - interval '1 hour', 30, 75, 94, 70, 85, 40, 'declining', 'critical', 0.6, 30), "
            "('{p}_m2', now() - interval '8 days', 60, 75, 94, 70, 85, 60, 'stable', 'high', 0.4, 30), "
            "('{p}_m3', now() - interval '8 days', 60, 75, 94, 70, 85, 60, 'stable', 'high', 0.4, 30), "
            "('{p}_m4', now() - interval '8 days', 60, 75, 94, 70, 85, 80, 'stable', 'low', 0.2, 30), "
            "('{p}_m5', now() - interval '3 days', 60, 75, 94, 70, 85, 80, 'stable', 'low', 0.2, 30);"
            "INSERT INTO health_overrides (client_id, score, reason, set_by, set_at, expires_at) VALUES "
            "('{p}_m4', 75, 'fixture', 'test', now() - interval '1 day', now() + interval '1 day');"
            "INSERT INTO contracts (contract_id, client_id, tier, contract_value, start_date, end_date) "
            "VALUES ('{p}_cm1', '{p}_m1', 'standard', 12345, current_date - 100, current_date + 265);"
            # worklist of CSM 'Sc Csm {p}': hand-computed priorities in test_worklist_order
            "INSERT INTO accounts (client_id, client_name, company_name, health_score, status, "
            " csm_assigned) VALUES "
            "('{p}_w1', 'Sc W1', 'Sc W1', 40, 'active', 'Sc Csm {p}'), "
            "('{p}_w2', 'Sc W2', 'Sc W2', 80, 'active', 'Sc Csm {p}'), "
            "('{p}_w3', 'Sc W3', 'Sc W3', 90, 'active', 'Sc Csm {p}'), "
            "('{p}_w4', 'Sc W4', 'Sc W4', 30, 'active', 'Sc Csm {p}'), "
            "('{p}_w5', 'Sc W5', 'Sc W5', 10, 'churned', 'Sc Csm {p}'), "
            "('{p}_w6', 'Sc W6', 'Sc W6', 20, 'active', 'Sc Csm {p}');"
            "INSERT INTO contracts (contract_id, client_id, tier, contract_value, start_date, end_date) "
            "VALUES ('{p}_c1', '{p}_w1', 'standard', 100000, current_date - 100, current_date + 200), "
            "('{p}_c2', '{p}_w2', 'standard', 150000, current_date - 300, current_date + 30), "
            "('{p}_c3', '{p}_w3', 'standard', 50000, current_date - 10, current_date + 400), "
            "('{p}_c4', '{p}_w4', 'standard', 10000, current_date - 10, current_date + 300), "
            "('{p}_c5', '{p}_w5', 'standard', 90000, current_date - 10, current_date + 20);"
            "INSERT INTO invoices (invoice_id, contract_id, client_id, amount, issued_on, due_on) "
            "VALUES ('{p}_i3', '{p}_c3', '{p}_w3', 10, current_date - 40, current_date - 10), "
            "('{p}_i4', '{p}_c4', '{p}_w4', 10, current_date - 40, current_date - 10);"
            "INSERT INTO invoices (invoice_id, contract_id, client_id, amount, issued_on, due_on, paid_on) "
            "VALUES ('{p}_i5', '{p}_c3', '{p}_w3', 10, current_date - 40, current_date + 10, current_date - 1);"
            "INSERT INTO support_tickets (ticket_id, client_id, subject, description, priority, status, "
            " requester_email, requester_name, sla_first_response_minutes, sla_resolution_minutes) "
            "VALUES ('TKT-{t3}', '{p}_w3', 's', 'd', 'P1', 'open', 'a@b.test', 'A', 60, 600), "
            "('TKT-{t4}', '{p}_w3', 's', 'd', 'P0', 'in_progress', 'a@b.test', 'A', 60, 600), "
            "('TKT-{t5}', '{p}_w3', 's', 'd', 'P1', 'reopened', 'a@b.test', 'A', 60, 600), "
            "('TKT-{t6}', '{p}_w3', 's', 'd', 'P0', 'resolved', 'a@b.test', 'A', 60, 600), "
            "('TKT-{t7}', '{p}_w3', 's', 'd', 'P2', 'open', 'a@b.test', 'A', 60, 600);"
            "INSERT INTO health_overrides (client_id, score, reason, set_by, expires_at) VALUES "
            "('{p}_w4', 95, 'fixture', 'test', now() + interval '5 days');"
            # hierarchy: h1 <- h2 (30000, 10 seats, 80), h3 (10000, 5 seats, 40); h2 <- h4 (no
            # contract, 60); h5 <- h6 (no contract, 50), h7 (no contract, 61); c1/c2 for the race
            "INSERT INTO accounts (client_id, client_name, company_name, health_score) VALUES "
            "('{p}_h1', 'Sc H1', 'Sc H1', 90), ('{p}_h2', 'Sc H2', 'Sc H2', 80), "
            "('{p}_h3', 'Sc H3', 'Sc H3', 40), ('{p}_h4', 'Sc H4', 'Sc H4', 60), "
            "('{p}_h5', 'Sc H5', 'Sc H5', 70), ('{p}_h6', 'Sc H6', 'Sc H6', 50), "
            "('{p}_h7', 'Sc H7', 'Sc H7', 61), "
            "('{p}_c1', 'Sc C1', 'Sc C1', 50), ('{p}_c2', 'Sc C2', 'Sc C2', 50);"
            # scorecards: no contract, usage or NPS -> usage 50, engagement 50, satisfaction 70,
            # payment 85 (all four missing inputs), support 100
            "INSERT INTO accounts (client_id, client_name, company_name, health_score, tier, "
            " industry) VALUES "
            "('{p}_s1', 'Sc S1', 'Sc S1', 50, 'enterprise', 'ScInd {p}'), "
            "('{p}_s2', 'Sc S2', 'Sc S2', 50, 'standard', 'scind {p}'), "
            "('{p}_s3', 'Sc S3', 'Sc S3', 50, 'standard', 'Other {p}');"
            "INSERT INTO contracts (contract_id, client_id, tier, contract_value, licensed_seats, "
            " start_date, end_date) VALUES "
            "('{p}_ch2', '{p}_h2', 'standard', 30000, 10, current_date - 10, current_date + 300), "
            "('{p}_ch3', '{p}_h3', 'standard', 10000, 5, current_date - 10, current_date + 300);"
            "INSERT INTO contacts (client_id, name, email) VALUES "
            "('{p}_3', 'Sam Brightpath', 'sam@brightpathx.test'), "
            "('{p}_2', 'Cy Fo', 'cfo@quandrix.test');").format(p=p, t1=t1, t2=t1 + 1, t3=t1 + 2, t4=t1 + 3, t5=t1 + 4, t6=t1 + 5,
                     t7=t1 + 6))
        cls.d = lib.Csmcpd(workers=1).start()
        cls.s = cls.d.session()
        cls.schemas, cursor = {}, None
        while True:
            r = cls.s.request("tools/list", {"cursor": cursor} if cursor else {})
            cls.schemas.update({t["name"]: t.get("outputSchema") for t in r["tools"]})
            cursor = r.get("nextCursor")
            if not cursor:
                break

    @classmethod
    def tearDownClass(cls):
        cls.s.close()
        cls.d.stop()
        du.psql(cls.url, "DELETE FROM accounts WHERE client_id LIKE '%s\\_%%'" % cls.p)
        du.psql(cls.url, "DELETE FROM health_scorecards WHERE name LIKE '%%%s%%'" % cls.p)

    def q(self, sql):
        return du.psql(self.url, sql)

    def cid(self, k):
        return "%s_%s" % (self.p, k)

    def call(self, name, args):
        out = self.s.call_ok(name, args)
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
            self.assertIn("arguments." + where, text)

    # ------------------------------------------------------------ resolve_account

    def test_resolve_typo_finds_the_account_first(self):
        out = self.call("resolve_account", {"query": "  Quandrix   Widgts "})
        self.assertEqual(out["query"], "quandrix widgts")
        m = out["matches"]
        self.assertEqual(m[0]["client_id"], self.cid(1))
        self.assertEqual(m[0]["matched_field"], "client_name")
        self.assertEqual(m[0]["matched_value"], "Quandrix Widgets")
        self.assertEqual(m[0]["similarity"], similarity("quandrix widgts", "quandrix widgets"))
        self.assertEqual(m[0]["similarity"], 0.737)  # 14 shared of 19 trigrams
        self.assertEqual(m[0]["tier"], "enterprise")
        self.assertEqual(m[0]["health_score"], 71)
        self.assertEqual(m[0]["csm_assigned"], "Sc Csm")
        # the sibling account shares "quandrix": second, with its own similarity
        self.assertEqual(m[1]["client_id"], self.cid(2))
        self.assertEqual(m[1]["similarity"], similarity("quandrix widgts", "quandrix holdings"))
        self.assertEqual(out["total_matches"], 2)
        self.assertIn("best: Quandrix Widgets (%s, client_name Quandrix Widgets, similarity "
                      "0.737)" % self.cid(1), out["summary"])

    def test_resolve_partial_name_ranks_by_similarity(self):
        out = self.call("resolve_account", {"query": "quandrix"})
        got = [(x["client_id"], x["matched_value"], x["similarity"]) for x in out["matches"]]
        self.assertEqual(got, [
            (self.cid(1), "Quandrix Widgets", similarity("quandrix", "quandrix widgets")),
            (self.cid(2), "Quandrix Holdings", similarity("quandrix", "quandrix holdings"))])
        self.assertEqual(got[0][2], 0.529)  # 9 / 17
        self.assertEqual(got[1][2], 0.5)    # 9 / 18
        self.assertEqual(out["total_matches"], 2)
        out = self.call("resolve_account", {"query": "quandrix", "limit": 1})
        self.assertEqual([x["client_id"] for x in out["matches"]], [self.cid(1)])
        self.assertEqual(out["total_matches"], 2)

    def test_resolve_by_contact_email_domain(self):
        out = self.call("resolve_account", {"query": "brightpathx.test"})
        self.assertEqual(out["total_matches"], 1)
        m = out["matches"][0]
        self.assertEqual((m["client_id"], m["matched_field"], m["matched_value"]),
                         (self.cid(3), "contact_email", "sam@brightpathx.test"))
        self.assertEqual(m["similarity"], similarity("brightpathx.test", "sam@brightpathx.test"))
        out = self.call("resolve_account", {"query": "jo@vellmora.test"})
        m = out["matches"][0]
        self.assertEqual((m["client_id"], m["matched_field"], m["similarity"]),
                         (self.cid(3), "contact_email", 1.0))

    def test_resolve_exact_domain_lists_only_its_accounts(self):
        # an exact domain: the accounts with an address at it, nothing merely similar
        out = self.call("resolve_account", {"query": "Quandrix.test"})
        got = [(m["client_id"], m["matched_value"], m["similarity"]) for m in out["matches"]]
        self.assertEqual(sorted(got, key=lambda g: g[0]), [
            (self.cid(1), "ops@quandrix.test", similarity("quandrix.test", "ops@quandrix.test")),
            (self.cid(2), "cfo@quandrix.test", similarity("quandrix.test", "cfo@quandrix.test"))])
        self.assertEqual(out["total_matches"], 2)

    def test_resolve_no_match(self):
        out = self.call("resolve_account", {"query": "zzqvxkpw"})
        self.assertEqual(out["matches"], [])
        self.assertEqual(out["total_matches"], 0)
        self.assertEqual(out["summary"], 'no account resembles "zzqvxkpw"')

    def test_resolve_validation(self):
        self.invalid("resolve_account", {}, None)
        self.invalid("resolve_account", {"query": "a"}, "query")
        self.invalid("resolve_account", {"query": "acme", "limit": 26}, "limit")
        self.invalid("resolve_account", {"query": "acme", "limit": 0}, "limit")
        self.invalid("resolve_account", {"query": "acme", "fuzzy": True})
        self.assertIn("query: at least 2 characters",
                      self.fail_text("resolve_account", {"query": " a  "}))

    # ------------------------------------------------------------ override_health_score

    def iso(self, **delta):
        t = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(**delta)
        return t.strftime("%Y-%m-%dT%H:%M:%SZ")

    def test_override_set_replace_expire_clear(self):
        c = self.cid(5)
        exp = self.iso(days=10)
        out = self.call("override_health_score", {"action": "set", "client_id": c, "score": 30,
                                                  "reason": "exec escalation", "expires_at": exp})
        self.assertEqual((out["computed_score"], out["effective_score"]), (70, 30))
        self.assertEqual(out["override"]["score"], 30)
        self.assertEqual(out["override"]["days_remaining"], 9)  # 10 days less the call's seconds
        self.assertIsNone(out["previous_override"])
        ex = self.call("explain_health_score", {"client_id": c})
        self.assertEqual(ex["effective_score"], 30)
        self.assertEqual(ex["override"]["reason"], "exec escalation")
        self.assertIn("overridden to 30", ex["summary"])
        # a second set replaces the first
        out = self.call("override_health_score", {"action": "set", "client_id": c, "score": 40,
                                                  "reason": "renewal signed",
                                                  "expires_at": self.iso(days=20)})
        self.assertEqual((out["previous_override"]["score"], out["effective_score"]), (30, 40))
        self.assertEqual(self.q("SELECT count(*) FROM health_overrides WHERE client_id = '%s' "
                                "AND cleared_at IS NULL" % c), "1")
        self.assertEqual(self.q("SELECT clear_reason FROM health_overrides WHERE client_id = '%s' "
                                "AND score = 30" % c), "replaced by a new override")
        # expiry: back-date the active override; nothing else writes, the computed score is back
        self.q("UPDATE health_overrides SET set_at = now() - interval '21 days', "
               "expires_at = now() - interval '1 second' WHERE client_id = '%s' "
               "AND cleared_at IS NULL" % c)
        self.assertEqual(self.q("SELECT csmcp.effective_health_score('%s')" % c), "70")
        ex = self.call("explain_health_score", {"client_id": c})
        self.assertIsNone(ex["override"])
        self.assertEqual(ex["effective_score"], ex["computed_score"])
        self.assertIn("has no active health override (the last one expired at",
                      self.fail_text("override_health_score", {"action": "clear", "client_id": c}))
        # a new set after expiry closes the expired one; then clear
        self.call("override_health_score", {"action": "set", "client_id": c, "score": 55,
                                            "reason": "check-in", "expires_at": self.iso(days=1)})
        self.assertEqual(self.q("SELECT clear_reason FROM health_overrides WHERE client_id = '%s' "
                                "AND score = 40" % c),
                         "expired; closed when a new override was set")
        out = self.call("override_health_score", {"action": "clear", "client_id": c,
                                                  "reason": "resolved"})
        self.assertEqual((out["previous_override"]["score"], out["effective_score"]), (55, 70))
        self.assertIsNone(out["override"])
        self.assertEqual(self.q("SELECT string_agg(action || ':' || coalesce(old_values->>'score', '-') "
                                "|| '>' || coalesce(new_values->>'score', new_values->>'clear_reason'), "
                                "',' ORDER BY activity_id) FROM activity_log WHERE client_id = '%s' "
                                "AND entity = 'health_override'" % c),
                         "set_health_override:->30,set_health_override:30>40,"
                         "set_health_override:->55,clear_health_override:55>resolved")

    def test_override_validation(self):
        c = self.cid(1)
        self.invalid("override_health_score", {"action": "set", "client_id": c, "score": 101,
                                               "reason": "x y z", "expires_at": self.iso(days=1)},
                     "score")
        self.invalid("override_health_score", {"action": "pause", "client_id": c}, "action")
        self.invalid("override_health_score", {"client_id": c})
        self.assertIn("expires_at: at most 180 days ahead", self.fail_text(
            "override_health_score", {"action": "set", "client_id": c, "score": 10,
                                      "reason": "why not", "expires_at": self.iso(days=181)}))
        self.assertIn("is not in the future", self.fail_text(
            "override_health_score", {"action": "set", "client_id": c, "score": 10,
                                      "reason": "why not", "expires_at": self.iso(days=-1)}))
        self.assertIn("is not a date-time", self.fail_text(
            "override_health_score", {"action": "set", "client_id": c, "score": 10,
                                      "reason": "why not", "expires_at": "next tuesday"}))
        self.assertIn("expires_at: required", self.fail_text(
            "override_health_score", {"action": "set", "client_id": c, "score": 10,
                                      "reason": "why not"}))
        self.assertIn("reason: required", self.fail_text(
            "override_health_score", {"action": "set", "client_id": c, "score": 10,
                                      "expires_at": self.iso(days=1)}))
        self.assertIn("only used with action set", self.fail_text(
            "override_health_score", {"action": "clear", "client_id": c, "score": 10}))
        self.assertIn("account %s has no active health override" % c, self.fail_text(
            "override_health_score", {"action": "clear", "client_id": c}))
        self.assertIn("not found", self.fail_text(
            "override_health_score", {"action": "clear", "client_id": self.cid("nope")}))

    # ------------------------------------------------------------ explain_health_score

    def test_explain_contributions(self):
        out = self.call("explain_health_score", {"client_id": self.cid(4)})
        got = {m["measure"]: (m["value"], m["weight"], m["contribution"],
                              m["previous_contribution"], m["contribution_change"])
               for m in out["measures"]}
        self.assertEqual([m["measure"] for m in out["measures"]],
                         ["usage", "engagement", "support", "satisfaction", "payment"])
        exp = {"usage": (50, 0.35, 17.5, 21.0, -3.5),
               "engagement": (50, 0.25, 12.5, 18.75, -6.25),
               "support": (74, 0.15, 11.1, 14.1, -3.0),
               "satisfaction": (50, 0.15, 7.5, 10.5, -3.0),
               "payment": (85, 0.10, 8.5, 8.5, 0.0)}
        for k, v in exp.items():
            for a, b in zip(got[k], v):
                self.assertAlmostEqual(float(a), b, places=9, msg=k)
        self.assertAlmostEqual(float(out["score_before_rounding"]), 57.1, places=9)
        self.assertAlmostEqual(sum(float(m["contribution"]) for m in out["measures"]),
                               float(out["score_before_rounding"]), places=9)
        self.assertEqual(out["computed_score"], 57)
        self.assertEqual(out["effective_score"], 57)
        self.assertEqual(out["grading"], {"min": 50, "max": 64, "label": "high", "color": "orange"})
        self.assertEqual(out["previous_score"]["overall_score"], 69)
        inputs = {m["measure"]: m["inputs"] for m in out["measures"]}
        self.assertEqual(inputs["support"], "2 tickets opened, 2 of them P0/P1, in 30 days")
        self.assertEqual(inputs["satisfaction"],
                         "NPS 0.00 from 2 responses (1 promoters, 1 detractors) in 30 days")
        self.assertEqual(inputs["usage"], "no active contract with licensed seats: neutral 50")
        self.assertEqual(inputs["engagement"], "no day with usage recorded: neutral 50")
        self.assertEqual(inputs["payment"], "no active contract: 85")
        self.assertIsNone(out["override"])

    def test_explain_without_stored_score_and_not_found(self):
        out = self.call("explain_health_score", {"client_id": self.cid(3)})
        self.assertIsNone(out["previous_score"])
        self.assertTrue(all(m["contribution_change"] is None for m in out["measures"]))
        self.assertIn("not found", self.fail_text("explain_health_score",
                                                  {"client_id": self.cid("nope")}))
        self.invalid("explain_health_score", {}, None)

    # ------------------------------------------------------------ find_health_movers

    def movers(self, **args):
        args.setdefault("limit", 1000)
        out = self.call("find_health_movers", args)
        self.assertLessEqual(len(out["movers"]), out["total"])
        self.assertEqual(out["total"], out["up"] + out["down"])
        return {m["client_id"][len(self.p) + 1:]: m for m in out["movers"]
                if m["client_id"].startswith(self.p + "_m")}, out

    def test_movers_at_the_min_change_boundary(self):
        got, out = self.movers(days=7)
        self.assertEqual(sorted(got), ["m1", "m2"])  # m3 moved 9, m4 5 (override), m5 no baseline
        m1, m2 = got["m1"], got["m2"]
        self.assertEqual((m1["from_score"], m1["to_score"], m1["change"], m1["direction"]),
                         (60, 40, -20, "down"))
        self.assertEqual(m1["measure_moved_most"]["measure"], "usage")
        self.assertAlmostEqual(float(m1["measure_moved_most"]["contribution_change"]), -10.5)
        self.assertEqual(float(m1["arr"]), 12345.0)
        self.assertEqual((m2["from_score"], m2["to_score"], m2["change"], m2["direction"]),
                         (60, 70, 10, "up"))  # exactly min_change: listed
        self.assertIsNone(m2["measure_moved_most"])
        self.assertEqual(float(m2["arr"]), 0.0)
        self.assertEqual(out["min_change"], 10)
        got, _ = self.movers(days=7, min_change=9)
        self.assertEqual(sorted(got), ["m1", "m2", "m3"])
        got, _ = self.movers(days=7, min_change=5)
        self.assertEqual(sorted(got), ["m1", "m2", "m3", "m4"])
        m4 = got["m4"]
        self.assertEqual((m4["from_score"], m4["to_score"], m4["change"], m4["from_overridden"],
                          m4["to_overridden"]), (80, 75, -5, False, True))
        got, _ = self.movers(days=7, direction="up")
        self.assertEqual(sorted(got), ["m2"])
        got, _ = self.movers(days=7, direction="down")
        self.assertEqual(sorted(got), ["m1"])
        got, _ = self.movers(days=2)  # m5's baseline is 3 days old: it moved 80 -> 10
        self.assertEqual(got["m5"]["change"], -70)
        self.invalid("find_health_movers", {"min_change": 0}, "min_change")
        self.invalid("find_health_movers", {"direction": "sideways"}, "direction")
        self.invalid("find_health_movers", {"days": 366}, "days")

    # ------------------------------------------------------------ prioritize_portfolio

    def test_worklist_order(self):
        csm = "Sc Csm %s" % self.p
        out = self.call("prioritize_portfolio", {"csm_assigned": csm})
        self.assertEqual(out["weights"], {"renewal_90d": 1.0, "critical_ticket": 0.5,
                                          "overdue_invoice": 1.0})
        got = [(a["client_id"][len(self.p) + 1:], float(a["priority_score"]), a["top_reason_code"],
                a["next_action"]) for a in out["accounts"]]
        self.assertEqual(got, [
            # 150000 x 0.20 x (1 + 1 renewal in 30 days) = 60000; tie with w1, more ARR first
            ("w2", 60000.0, "renewal", "Prepare the renewal due in 30 days (track_renewals, "
                                       "negotiate_renewals)"),
            # 100000 x 0.60 = 60000
            ("w1", 60000.0, "churn_risk", "Escalate to an executive sponsor"),
            # 50000 x 0.10 x (1 + 0.5 x 3 open P0/P1 + 1 overdue) = 17500
            ("w3", 17500.0, "critical_tickets", "Review the 3 open P0/P1 ticket(s) with the "
                                                "support lead"),
            # override 95: 10000 x 0.05 x (1 + 1 overdue) = 1000
            ("w4", 1000.0, "overdue_invoices", "Follow up the 1 overdue invoice(s) with billing"),
            # no contract: ARR 0
            ("w6", 0.0, "churn_risk", "Escalate to an executive sponsor")])
        self.assertEqual(out["total"], 5)  # w5 is churned
        self.assertEqual(float(out["total_priority"]), 138500.0)
        w4 = out["accounts"][3]
        self.assertEqual((w4["effective_score"], w4["computed_score"], w4["overridden"],
                          float(w4["churn_probability"])), (95, 30, True, 0.05))
        w3 = out["accounts"][2]
        self.assertEqual((w3["open_critical_tickets"], w3["overdue_invoices"]), (3, 1))
        page = self.call("prioritize_portfolio", {"csm_assigned": csm, "limit": 2, "offset": 2})
        self.assertEqual([a["client_id"] for a in page["accounts"]],
                         [self.cid("w3"), self.cid("w4")])
        self.assertEqual(page["total"], 5)
        none = self.call("prioritize_portfolio", {"csm_assigned": "Nobody %s" % self.p})
        self.assertEqual((none["accounts"], none["total"]), ([], 0))
        self.invalid("prioritize_portfolio", {"limit": 0}, "limit")

    # ------------------------------------------------------------ manage_account_hierarchy

    def h(self, action, child, parent=None):
        args = {"action": action, "client_id": self.cid(child)}
        if parent:
            args["parent_id"] = self.cid(parent)
        return args

    def test_hierarchy_rollup_and_cycles(self):
        out = self.call("manage_account_hierarchy", self.h("set_parent", "h2", "h1"))
        self.assertEqual((out["parent_id"], out["previous_parent_id"]), (self.cid("h1"), None))
        self.call("manage_account_hierarchy", self.h("set_parent", "h3", "h1"))
        self.call("manage_account_hierarchy", self.h("set_parent", "h4", "h2"))
        out = self.call("manage_account_hierarchy", self.h("children", "h1"))
        self.assertEqual([(c["client_id"], float(c["arr"]), c["licensed_seats"],
                           c["effective_health_score"], c["child_count"]) for c in out["children"]],
                         [(self.cid("h2"), 30000.0, 10, 80, 1), (self.cid("h3"), 10000.0, 5, 40, 0)])
        out = self.call("manage_account_hierarchy", self.h("rollup", "h1"))
        r = out["rollup"]
        # (30000 x 80 + 10000 x 40 + 0 x 60) / 40000 = 70.0 over 3 descendants
        self.assertEqual((r["descendants"], float(r["arr"]), r["licensed_seats"],
                          float(r["health_score"]), r["health_method"],
                          r["own_effective_health_score"]),
                         (3, 40000.0, 15, 70.0, "arr_weighted_mean", 90))
        # an override on h3 moves the roll-up: (30000 x 80 + 10000 x 0) / 40000 = 60.0
        self.q("INSERT INTO health_overrides (client_id, score, reason, set_by, expires_at) "
               "VALUES ('%s', 0, 'fixture', 'test', now() + interval '1 day')" % self.cid("h3"))
        r = self.call("manage_account_hierarchy", self.h("rollup", "h1"))["rollup"]
        self.assertEqual(float(r["health_score"]), 60.0)
        # cycles: h1 under its grandchild h4 is refused, naming the chain
        self.assertIn("cycle refused: %s is an ancestor of %s (%s -> %s -> %s)" % (
            self.cid("h1"), self.cid("h4"), self.cid("h4"), self.cid("h2"), self.cid("h1")),
            self.fail_text("manage_account_hierarchy", self.h("set_parent", "h1", "h4")))
        self.assertIn("cannot be its own parent",
                      self.fail_text("manage_account_hierarchy", self.h("set_parent", "h1", "h1")))
        self.assertIn("already has parent", self.fail_text(
            "manage_account_hierarchy", self.h("set_parent", "h2", "h1")))
        self.assertIn("has no parent",
                      self.fail_text("manage_account_hierarchy", self.h("clear_parent", "h1")))
        self.assertIn("no child accounts to roll up",
                      self.fail_text("manage_account_hierarchy", self.h("rollup", "h4")))
        self.assertIn("not found", self.fail_text(
            "manage_account_hierarchy", self.h("set_parent", "h4", "nope")))
        self.assertIn("parent_id: required", self.fail_text(
            "manage_account_hierarchy", self.h("set_parent", "h4")))
        self.invalid("manage_account_hierarchy", {"action": "adopt", "client_id": self.cid("h1")},
                     "action")
        out = self.call("manage_account_hierarchy", self.h("clear_parent", "h4"))
        self.assertEqual((out["parent_id"], out["previous_parent_id"]), (None, self.cid("h2")))
        r = self.call("manage_account_hierarchy", self.h("rollup", "h1"))["rollup"]
        self.assertEqual((r["descendants"], float(r["health_score"])), (2, 60.0))
        self.assertEqual(self.q("SELECT string_agg(action || ':' || coalesce(old_values->>'parent_id', '-') "
                                "|| '>' || coalesce(new_values->>'parent_id', '-'), ',' ORDER BY activity_id) "
                                "FROM activity_log WHERE client_id = '%s' AND entity = 'account_hierarchy'"
                                % self.cid("h4")),
                         "set_parent:->%s,clear_parent:%s>-" % (self.cid("h2"), self.cid("h2")))

    def test_hierarchy_mean_without_arr(self):
        self.call("manage_account_hierarchy", self.h("set_parent", "h6", "h5"))
        self.call("manage_account_hierarchy", self.h("set_parent", "h7", "h5"))
        r = self.call("manage_account_hierarchy", self.h("rollup", "h5"))["rollup"]
        self.assertEqual((float(r["arr"]), float(r["health_score"]), r["health_method"]),
                         (0.0, 55.5, "mean"))
        # a scorecard configured for parents: h5 is scored by it and rolls up to its own score
        self.q("UPDATE accounts SET industry = 'HierInd %s' WHERE client_id = '%s'" % (self.p, self.cid("h5")))
        sc = self.sc(action="create", name="Parents " + self.p, weights={"support": 1.0},
                     criteria={"hierarchy_role": "parent", "industry": "HierInd " + self.p}, priority=1)["scorecard"]
        try:
            # h6 has no children: the parents' scorecard does not apply to it
            self.assertEqual(self.call("explain_health_score", {"client_id": self.cid("h6")})["scoring_model"], "default")
            out = self.calc("h5")  # support 100 (no tickets) x 1.0
            self.assertEqual((out["current_health_score"], out["scorecard"]["scorecard_id"]), (100, sc["scorecard_id"]))
            r = self.call("manage_account_hierarchy", self.h("rollup", "h5"))["rollup"]
            self.assertEqual((float(r["health_score"]), r["health_method"], r["scorecard_id"],
                              float(r["children_health_score"]), r["own_effective_health_score"]),
                             (100.0, "own_scorecard", sc["scorecard_id"], 55.5, 100))
        finally:
            self.sc(action="archive", scorecard_id=sc["scorecard_id"])
        r = self.call("manage_account_hierarchy", self.h("rollup", "h5"))["rollup"]
        self.assertEqual((r["health_method"], r["scorecard_id"]), ("mean", None))

    def test_hierarchy_race_cannot_close_a_cycle(self):
        results = [None, None]

        def run(i, child, parent):
            s = self.d.session()
            try:
                results[i] = s.call_tool("manage_account_hierarchy",
                                         self.h("set_parent", child, parent))
            finally:
                s.close()
        ts = [threading.Thread(target=run, args=(0, "c1", "c2")),
              threading.Thread(target=run, args=(1, "c2", "c1"))]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        self.assertEqual(sum(1 for r in results if not r.get("isError")), 1, results)
        self.assertEqual(self.q("SELECT count(*) FROM account_parents WHERE client_id IN "
                                "('%s', '%s')" % (self.cid("c1"), self.cid("c2"))), "1")

    # ------------------------------------------------------------ manage_health_scorecards

    def sc(self, **args):
        return self.call("manage_health_scorecards", args)

    def calc(self, k, **extra):
        args = {"client_id": self.cid(k)}
        args.update(extra)
        return self.s.call_ok("calculate_health_score", args)

    def test_catalogue_measures_in_scorecards(self):
        """SQL-backed catalogue measures: raw -> 0-100 by the catalogue's worst/best, weighted with
        the built-in ones, missing ones neutral (50) or redistributed, stored with the score and
        explained."""
        p = self.p
        t1 = random.randint(950000000, 989999999)
        self.q(("INSERT INTO accounts (client_id, client_name, company_name, industry, health_score) VALUES "
                "('{p}_k1', 'Sc K1', 'Sc K1', 'CatInd {p}', 50), ('{p}_k2', 'Sc K2', 'Sc K2', 'CatIndB {p}', 50);"
                "INSERT INTO nps_responses (response_id, client_id, score) VALUES "
                "('{p}_kn1', '{p}_k1', 10), ('{p}_kn2', '{p}_k1', 6), ('{p}_kn3', '{p}_k2', 10), ('{p}_kn4', '{p}_k2', 6);"
                "INSERT INTO support_tickets (ticket_id, client_id, subject, description, priority, status, "
                " requester_email, requester_name, sla_first_response_minutes, sla_resolution_minutes) VALUES "
                "('TKT-{t1}', '{p}_k1', 's', 'd', 'P1', 'open', 'a@b.test', 'A', 60, 600), "
                "('TKT-{t2}', '{p}_k1', 's', 'd', 'P0', 'in_progress', 'a@b.test', 'A', 60, 600), "
                "('TKT-{t3}', '{p}_k1', 's', 'd', 'P1', 'resolved', 'a@b.test', 'A', 60, 600)").format(
                    p=p, t1=t1, t2=t1 + 1, t3=t1 + 2))
        lst = self.sc(action="list")
        cat = {m["measure"]: m for m in lst["available_measures"]}
        self.assertEqual([m["measure"] for m in lst["available_measures"][:5]],
                         ["usage", "engagement", "support", "satisfaction", "payment"])
        self.assertEqual((cat["nps_average"]["kind"], cat["nps_average"]["worst"], cat["nps_average"]["best"]),
                         ("catalogue", 0, 10))
        self.assertEqual((cat["open_critical_tickets"]["worst"], cat["open_critical_tickets"]["best"]), (5, 0))
        self.assertIn("seat_utilization", cat)
        # k1, neutral: NPS average (10 + 6) / 2 = 8 -> 80; 2 open P0/P1 (the resolved one does not
        # count) -> (2 - 5) / (0 - 5) x 100 = 60; 0.5 x 80 + 0.5 x 60 = 70
        c1 = self.sc(action="create", name="Cat1 " + p, weights={"nps_average": 0.5, "open_critical_tickets": 0.5},
                     criteria={"industry": "CatInd " + p}, priority=1)["scorecard"]
        out = self.calc("k1")
        self.assertEqual(out["current_health_score"], 70)
        self.assertEqual(out["scorecard"]["scorecard_id"], c1["scorecard_id"])
        self.assertEqual(out["scorecard"]["score_before_rounding"], 70)
        got = [(m["measure"], m["raw"], m["value"], m["weight"], m["contribution"])
               for m in out["scorecard"]["custom_measures"]]
        self.assertEqual(got, [("nps_average", 8, 80, 0.5, 40), ("open_critical_tickets", 2, 60, 0.5, 30)])
        stored = json.loads(self.q("SELECT custom_measures FROM health_scores WHERE client_id = '%s_k1' "
                                   "ORDER BY score_id DESC LIMIT 1" % p))
        self.assertEqual([(m["measure"], m["raw"], m["value_used"]) for m in stored],
                         [("nps_average", 8, 80), ("open_critical_tickets", 2, 60)])
        ex = self.call("explain_health_score", {"client_id": self.cid("k1")})
        self.assertEqual((ex["scoring_model"], ex["scorecard"]["scorecard_id"], ex["computed_score"]),
                         ("scorecard", c1["scorecard_id"], 70))
        contrib = {m["measure"]: m["contribution"] for m in ex["measures"]}
        self.assertEqual((contrib["nps_average"], contrib["open_critical_tickets"], contrib["usage"]), (40, 30, 0))
        self.assertAlmostEqual(sum(contrib.values()), ex["score_before_rounding"], places=9)
        self.assertEqual(ex["grading"]["label"], "medium")
        self.assertIn("8.00 points 0-10 -> 80.00 (catalogue measure nps_average)",
                      [m["inputs"] for m in ex["measures"] if m["measure"] == "nps_average"][0])
        # k2: seat_utilization has no data (no contract). redistribute: nps_average gets all the
        # weight -> 80; neutral: 0.4 x 50 + 0.6 x 80 = 68
        c2 = self.sc(action="create", name="Cat2 " + p, weights={"seat_utilization": 0.4, "nps_average": 0.6},
                     criteria={"industry": "CatIndB " + p}, priority=1, missing_input_policy="redistribute")["scorecard"]
        out = self.calc("k2")
        self.assertEqual(out["current_health_score"], 80)
        self.assertIn("seat_utilization", out["scorecard"]["missing_inputs"])
        su = [m for m in out["scorecard"]["custom_measures"] if m["measure"] == "seat_utilization"][0]
        self.assertEqual((su["raw"], su["value"], su["weight"], su["missing_reason"]), (None, None, 0, "no data"))
        self.sc(action="update", scorecard_id=c2["scorecard_id"], missing_input_policy="neutral")
        out = self.calc("k2")
        self.assertEqual((out["current_health_score"], out["scorecard"]["version"]), (68, 2))
        self.assertIn("weights: unknown measure vibes; measures: usage, engagement, support, satisfaction, "
                      "payment, days_since_last_activity, feature_adoption, nps_average",
                      self.fail_text("manage_health_scorecards", {"action": "create", "name": p + " X",
                                                                  "weights": {"usage": 0.5, "vibes": 0.5}}))
        self.invalid("manage_health_scorecards", {"action": "create", "name": "x",
                                                  "weights": {"Bad-Name": 1}}, "weights")
        self.invalid("manage_health_scorecards", {"action": "create", "name": "x",
                                                  "weights": {"nps_average": 1.5}}, "weights")

    def test_scorecards_resolution_versions_and_policies(self):
        ind = "ScInd %s" % self.p
        grading = [{"min": 0, "max": 59, "label": "red", "color": "#d00"},
                   {"min": 60, "max": 79, "label": "amber", "color": "#fa0"},
                   {"min": 80, "max": 100, "label": "green", "color": "#0a0"}]
        a = self.sc(action="create", name=self.p + " A", weights={"usage": 0.5, "support": 0.5},
                    criteria={"industry": ind}, priority=10, grading=grading)["scorecard"]
        b = self.sc(action="create", name=self.p + " B", weights={"support": 1.0},
                    criteria={"industry": ind, "tier": "enterprise"}, priority=5,
                    missing_input_policy="redistribute")["scorecard"]
        self.assertEqual((a["version"], a["status"], a["missing_input_policy"]),
                         (1, "active", "neutral"))
        # s2 (standard; industry matched ignoring case) -> A: 0.5 x 50 + 0.5 x 100 = 75, amber
        out = self.calc("s2")
        self.assertEqual(out["current_health_score"], 75)
        self.assertEqual((out["scorecard"]["scorecard_id"], out["scorecard"]["version"]),
                         (a["scorecard_id"], 1))
        self.assertEqual(out["scorecard"]["grading"]["label"], "amber")
        self.assertEqual(out["scorecard"]["missing_inputs"],
                         ["usage", "engagement", "satisfaction", "payment"])
        self.assertEqual(self.q("SELECT scorecard_id || ' v' || scorecard_version || ' ' || "
                                "usage_weight || '/' || support_weight || '/' || engagement_weight "
                                "FROM health_scores WHERE score_id = %d" % out["score_id"]),
                         "%s v1 0.500/0.500/0.000" % a["scorecard_id"])
        # s1 (enterprise) matches both; B has the lower priority number: support only = 100
        out = self.calc("s1")
        self.assertEqual((out["current_health_score"], out["scorecard"]["scorecard_id"]),
                         (100, b["scorecard_id"]))
        # s3 matches none: the default model 0.35x50 + 0.25x50 + 0.15x100 + 0.15x70 + 0.10x85 = 64
        out = self.calc("s3")
        self.assertEqual((out["current_health_score"], out["scorecard"]), (64, None))
        self.assertEqual(self.q("SELECT coalesce(scorecard_id, 'none') FROM health_scores "
                                "WHERE score_id = %d" % out["score_id"]), "none")
        # A v2 redistributes: usage is missing, its 0.5 goes to support -> 100
        up = self.sc(action="update", scorecard_id=a["scorecard_id"],
                     missing_input_policy="redistribute")["scorecard"]
        self.assertEqual((up["version"], up["status"]), (2, "active"))
        out = self.calc("s2")
        self.assertEqual((out["current_health_score"], out["scorecard"]["version"]), (100, 2))
        self.assertEqual(float(out["scorecard"]["score_before_rounding"]), 100.0)
        got = self.sc(action="get", scorecard_id=a["scorecard_id"])
        self.assertEqual([(v["version"], v["status"], v["scores_stored"]) for v in got["versions"]],
                         [(2, "active", 1), (1, "superseded", 1)])
        # archive B: s1 falls back to A v2
        self.assertEqual(self.sc(action="archive", scorecard_id=b["scorecard_id"])["scorecard"]
                         ["status"], "archived")
        out = self.calc("s1")
        self.assertEqual((out["scorecard"]["scorecard_id"], out["scorecard"]["version"]),
                         (a["scorecard_id"], 2))
        # custom weights bypass the scorecards
        out = self.calc("s2", scoring_model="custom", component_weights={
            "usage_weight": 0.2, "engagement_weight": 0.2, "support_weight": 0.2,
            "satisfaction_weight": 0.2, "payment_weight": 0.2})
        self.assertEqual((out["current_health_score"], out["scorecard"]), (71, None))  # 355 / 5
        # refusals
        self.assertIn("already archived", self.fail_text(
            "manage_health_scorecards", {"action": "archive", "scorecard_id": b["scorecard_id"]}))
        self.assertIn("is archived", self.fail_text(
            "manage_health_scorecards", {"action": "update", "scorecard_id": b["scorecard_id"],
                                         "priority": 7}))
        self.assertIn("already active", self.fail_text(
            "manage_health_scorecards", {"action": "activate", "scorecard_id": a["scorecard_id"]}))
        self.assertIn("changes nothing", self.fail_text(
            "manage_health_scorecards", {"action": "update", "scorecard_id": a["scorecard_id"],
                                         "priority": 10}))
        self.assertIn("weights: must sum to 1 (+/- 0.01); they sum to 0.9", self.fail_text(
            "manage_health_scorecards", {"action": "create", "name": self.p + " C",
                                         "weights": {"usage": 0.5, "support": 0.4}}))
        self.assertIn("grading: band b overlaps", self.fail_text(
            "manage_health_scorecards", {"action": "create", "name": self.p + " C",
                                         "weights": {"usage": 1},
                                         "grading": [{"min": 0, "max": 50, "label": "a", "color": "r"},
                                                     {"min": 50, "max": 100, "label": "b", "color": "g"}]}))
        self.assertIn("segment seg_nope_%s not found" % self.p.lower(), self.fail_text(
            "manage_health_scorecards", {"action": "create", "name": self.p + " C",
                                         "weights": {"usage": 1},
                                         "criteria": {"segment_id": "seg_nope_%s" % self.p.lower()}}))
        self.assertIn("scorecard SC-999999999 not found", self.fail_text(
            "manage_health_scorecards", {"action": "get", "scorecard_id": "SC-999999999"}))
        self.assertIn("weights: unknown measure vibes", self.fail_text(
            "manage_health_scorecards", {"action": "create", "name": "x", "weights": {"vibes": 1}}))
        self.invalid("manage_health_scorecards", {"action": "create", "name": "x",
                                                  "weights": {"usage": 1},
                                                  "grading": [{"min": 0, "max": 1, "label": "a",
                                                               "color": "r"}] * 13}, "grading")
        inactive = self.sc(action="create", name=self.p + " D", weights={"usage": 1},
                           criteria={"industry": ind}, priority=1, active=False)["scorecard"]
        self.assertEqual(inactive["status"], "inactive")
        self.assertEqual(self.calc("s2")["scorecard"]["scorecard_id"], a["scorecard_id"])
        lst = self.sc(action="list")
        mine = [x["scorecard_id"] for x in lst["scorecards"] if x["name"].startswith(self.p)]
        self.assertEqual(mine, [a["scorecard_id"], inactive["scorecard_id"], b["scorecard_id"]])


class EffectiveScoreEverywhere(lib.TestCase):
    """An active override is the effective score in every tool that reads health (list_clients,
    identify_churn_risk, forecast_renewals, get_client_overview, prioritize_portfolio,
    find_health_movers) and in the churn risk monitor's rule, the computed score shown beside it; moving the test clock
    (health_clock, no sleep) past expires_at restores the computed score everywhere without a
    write to the override or the account."""

    @classmethod
    def setUpClass(cls):
        cls.url = lib.database_url()
        cls.p = p = du.prefix()
        cls.csm = "Eff Csm " + p
        cls.ind = "EffInd " + p
        du.psql(cls.url, (
            "DELETE FROM health_clock;"
            "INSERT INTO accounts (client_id, client_name, company_name, tier, industry, lifecycle_stage, "
            " csm_assigned, health_score) VALUES "
            "('{p}_e', 'Eff E', 'Eff E', 'standard', '{ind}', 'active', '{csm}', 70), "
            "('{p}_f', 'Eff F', 'Eff F', 'standard', '{ind}', 'active', '{csm}', 50);"
            "INSERT INTO contracts (contract_id, client_id, tier, contract_value, start_date, end_date) VALUES "
            "('{p}_ce', '{p}_e', 'standard', 50000, current_date - 300, current_date + 60), "
            "('{p}_cf', '{p}_f', 'standard', 10000, current_date - 300, current_date + 200);"
            # the movers baseline: 70 eight days ago
            "INSERT INTO health_scores (client_id, calculated_at, usage_score, engagement_score, "
            " support_score, satisfaction_score, payment_score, overall_score, trend, risk_level, "
            " churn_probability, lookback_days) VALUES "
            "('{p}_e', now() - interval '8 days', 70, 70, 70, 70, 70, 70, 'stable', 'medium', 0.3, 30);"
        ).format(p=p, csm=cls.csm, ind=cls.ind))
        cls.d = lib.Csmcpd(workers=1).start()
        cls.s = cls.d.session()

    @classmethod
    def tearDownClass(cls):
        du.psql(cls.url, "DELETE FROM health_clock")
        cls.s.close()
        cls.d.stop()
        du.psql(cls.url, "DELETE FROM accounts WHERE client_id LIKE '%s\\_%%'" % cls.p)

    def q(self, sql):
        return du.psql(self.url, sql)

    def views(self):
        """What each tool says about account e (and the list's order of e and f)."""
        e = self.p + "_e"
        lc = self.s.call_ok("list_clients", {"industry_filter": self.ind, "sort_by": "health_score"})
        low = self.s.call_ok("list_clients", {"industry_filter": self.ind, "health_score_max": 40})
        cr = self.s.call_ok("identify_churn_risk", {"client_id": e})["at_risk_customers"][0]
        fr = [r for r in self.s.call_ok("forecast_renewals", {"client_id": e})["renewals"]
              if r["client_id"] == e][0]
        ov = self.s.call_ok("get_client_overview", {"client_id": e})["health"]
        pp = {a["client_id"]: a for a in self.s.call_ok(
            "prioritize_portfolio", {"csm_assigned": self.csm})["accounts"]}[e]
        mv = [m for m in self.s.call_ok("find_health_movers", {"min_change": 10, "days": 7, "limit": 1000})["movers"]
              if m["client_id"] == e]
        row = {c["client_id"]: c for c in lc["clients"]}[e]
        return {
            "list": (row["health_score"], row["computed_health_score"], row["health_overridden"]),
            "list_order": [c["client_id"][-1] for c in lc["clients"]],
            "list_avg": lc["summary"]["average_health_score"],
            "list_max40": [c["client_id"][-1] for c in low["clients"]],
            "churn": (cr["health_score"], cr["computed_health_score"], cr["health_overridden"], cr["at_risk"],
                      cr["risk_level"], cr["churn_probability"]),
            "forecast": (fr["health_score"], fr["computed_health_score"], fr["base_probability"]),
            "overview": (ov["current_score"], ov["computed_score"], (ov["override"] or {}).get("score"),
                         ov["risk_level"]),
            "worklist": (pp["effective_score"], pp["computed_score"], pp["overridden"], pp["churn_probability"]),
            "movers": [(m["from_score"], m["to_score"], m["change"], m["to_overridden"]) for m in mv],
            # the churn risk monitor's rule (threshold 60 by default)
            "monitor": self.q("SELECT coalesce(string_agg(kind || ':' || severity || ':' || (detail->>'health_score'), ','), '') "
                              "FROM csmcp.mon_eval_churn_risk_monitor('{}') WHERE client_id = '%s'" % e),
        }

    def test_override_everywhere_then_clock_past_expiry(self):
        e = self.p + "_e"
        exp = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
        self.s.call_ok("override_health_score", {"action": "set", "client_id": e, "score": 30,
                                                 "reason": "sponsor left", "expires_at": exp})
        self.assertEqual(self.views(), {
            "list": (30, 70, True), "list_order": ["e", "f"], "list_avg": 40.0, "list_max40": ["e"],
            # churn probability (100 - 30) / 100; risk level of 30: critical
            "churn": (30, 70, True, True, "critical", 0.7),
            # base probability of 30: < 60 -> 0.40 (70 would give 0.80)
            "forecast": (30, 70, 0.4),
            "overview": (30, 70, 30, "critical"),
            "worklist": (30, 70, True, 0.7),
            "movers": [(70, 30, -40, True)],
            "monitor": "critical_risk:critical:30",
        })
        before = self.q("SELECT o.xmin || '|' || a.xmin || '|' || coalesce(o.cleared_at::text, '-') FROM health_overrides o "
                        "JOIN accounts a USING (client_id) WHERE o.client_id = '%s' AND o.cleared_at IS NULL" % e)
        # three days later (test clock): the computed score is back everywhere
        self.q("INSERT INTO health_clock (offset_by) VALUES (interval '3 days')")
        try:
            self.assertEqual(self.views(), {
                "list": (70, 70, False), "list_order": ["f", "e"], "list_avg": 60.0, "list_max40": [],
                "churn": (70, 70, False, False, "medium", 0.3),
                "forecast": (70, 70, 0.8),
                "overview": (70, 70, None, "medium"),
                "worklist": (70, 70, False, 0.3),
                "movers": [],
                "monitor": "",
            })
            # nothing was written: the override row and the account are the same row versions
            self.assertEqual(self.q("SELECT o.xmin || '|' || a.xmin || '|' || coalesce(o.cleared_at::text, '-') "
                                    "FROM health_overrides o JOIN accounts a USING (client_id) "
                                    "WHERE o.client_id = '%s' AND o.cleared_at IS NULL" % e), before)
            self.assertIn("has no active health override (the last one expired at", self.s.call_tool(
                "override_health_score", {"action": "clear", "client_id": e})["content"][0]["text"])
        finally:
            self.q("DELETE FROM health_clock")
        # the clock back at now: the override is in force again (expiry is decided when read)
        self.assertEqual(self.views()["list"], (30, 70, True))
