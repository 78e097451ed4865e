"""Feedback & product intelligence tools (issue 17) through csmcpd over MCP, on hand-computed
fixtures: per-item keyword sentiment at every band boundary and the word-boundary fix, follow-up
days / escalation / assignee routing, aggregate sentiment bands, themes, emerging themes, period
comparison and health bands, product-insight business value / urgency / escalation / effort at
their thresholds, validation errors, not-found and scope refusal with a read-only key."""
import datetime
import random

import data_util as du
import lib
import sec_util as su

FB_ARGS = {"feedback_type": "general", "source": "email", "submitter_email": "ann@example.com",
           "submitter_name": "Ann", "category": "other", "priority": "medium"}


def today():
    return datetime.datetime.now(datetime.timezone.utc).date()


def day(n):
    return (today() - datetime.timedelta(days=n)).isoformat()


class FeedbackToolsTest(lib.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.url = lib.database_url()
        cls.p = du.prefix()
        cls.n = random.randint(10000000, 80000000)
        du.psql(cls.url, cls.fixture_sql())
        cls.d = lib.Csmcpd(workers=2).start()
        cls.s = cls.d.session()
        tools = cls.s.request("tools/list")["tools"]
        cls.schemas = {t["name"]: t.get("outputSchema") for t in tools}

    @classmethod
    def tearDownClass(cls):
        cls.s.close()
        cls.d.stop()

    @classmethod
    def cid(cls, k):
        return "%s_%s" % (cls.p, k)

    @classmethod
    def fid(cls, k):
        return "FB-%d%03d" % (cls.n, k)

    def call(self, name, args, session=None):
        out = (session or self.s).call_ok(name, args)
        if self.schemas.get(name):
            self.assertEqual(du.schema_errors(self.schemas[name], out), [], "%s output vs outputSchema" % name)
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

    def q(self, sql):
        return du.psql(self.url, sql)

    # ------------------------------------------------------------ fixture

    @classmethod
    def fixture_sql(cls):
        c = cls.cid
        s = []
        for k in ["a", "s", "c", "d"] + ["x%d" % i for i in range(10)]:
            s.append("INSERT INTO accounts (client_id, client_name, company_name, tier) VALUES ('%s', '%s', 'Fixture', 'standard');"
                     % (c(k), k.upper()))

        def fb(k, acc, label, score, themes, days_ago, ftype="general"):
            return ("INSERT INTO feedback (feedback_id, client_id, feedback_type, source, submitter_email, submitter_name, title, "
                    "content, category, sentiment, sentiment_score, themes, created_at) VALUES ('%s', '%s', '%s', 'email', "
                    "'a@b.co', 'A', 'T%d', 'content %d', 'other', '%s', %s, '{%s}', now() - interval '%d days');"
                    % (cls.fid(k), c(acc), ftype, k, k, label, score, ",".join(themes), days_ago))
        # S: current period (days 1..10 ago) and previous (11..20 ago); one item today is outside.
        s += [fb(1, "s", "very_positive", 0.8, ["product_features"], 2),
              fb(2, "s", "very_positive", 0.8, ["product_features", "user_interface"], 3),
              fb(3, "s", "positive", 0.5, ["product_features"], 4, "feature_request"),
              fb(4, "s", "neutral", 0.0, ["performance"], 5),
              fb(5, "s", "negative", -0.5, ["performance"], 6, "bug_report"),
              fb(6, "s", "positive", 0.5, ["product_features"], 12),
              fb(7, "s", "neutral", 0.0, [], 15),
              fb(8, "s", "very_negative", -0.8, ["performance"], 0)]
        # C: five negative performance items (mean -0.5) and one very negative support item.
        s += [fb(10 + i, "c", "negative", -0.5, ["performance"], 1 + i) for i in range(5)]
        s += [fb(16, "c", "very_negative", -0.8, ["customer_support"], 3)]
        # D: previous score 0.5, current (1 + 0.5 - 0.5) / 3 = 0.333 -> declining.
        s += [fb(20, "d", "positive", 0.5, [], 15), fb(21, "d", "very_positive", 0.8, [], 2),
              fb(22, "d", "positive", 0.5, [], 3), fb(23, "d", "negative", -0.5, [], 4)]
        # Insight evidence: 10 very negative items (X accounts) and 5 neutral ones.
        s += [fb(30 + i, "x%d" % i, "very_negative", -0.8, [], 1) for i in range(10)]
        s += [fb(40 + i, "x%d" % i, "neutral", 0.0, [], 1) for i in range(5)]
        s += [fb(50, "x0", "positive", 0.5, [], 1)]
        return "\n".join(s)

    def collect(self, title, content, **kw):
        a = dict(FB_ARGS, client_id=self.cid("a"), title=title, content=content)
        a.update(kw)
        return self.call("collect_feedback", a)

    # ------------------------------------------------------------ collect_feedback: sentiment

    def test_sentiment_bands(self):
        cases = [  # (text, pos, neg, label, score)
            ("great excellent love", 3, 0, "very_positive", 0.8),     # 3 > 0 + 2
            ("great excellent", 2, 0, "positive", 0.5),               # 2 > 0, not > 2
            ("great excellent love amazing but slow", 4, 1, "very_positive", 0.8),  # 4 > 1 + 2
            ("great excellent love but slow", 3, 1, "positive", 0.5),  # 3 = 1 + 2
            ("great but slow", 1, 1, "neutral", 0.0),
            ("nothing to report", 0, 0, "neutral", 0.0),
            ("slow and broken", 0, 2, "negative", -0.5),              # 2 > 0, not > 2
            ("slow broken awful", 0, 3, "very_negative", -0.8),       # 3 > 0 + 2
            ("great: slow broken awful hate", 1, 4, "very_negative", -0.8),
            ("great: slow broken awful", 1, 3, "negative", -0.5),     # 3 = 1 + 2
            ("slow slow slow", 0, 1, "negative", -0.5),               # a keyword counts once
        ]
        for text, pos, neg, label, score in cases:
            out = self.collect("Note", text, priority="low")
            sa = out["sentiment_analysis"]
            self.assertEqual((sa["positive_keywords"], sa["negative_keywords"], sa["sentiment"], sa["sentiment_score"]),
                             (pos, neg, label, score), text)
            self.assertEqual(sa["confidence"], 0.75)
            row = self.q("SELECT sentiment || ' ' || sentiment_score FROM feedback WHERE feedback_id = '%s'" % out["feedback_id"])
            self.assertEqual(row, "%s %.2f" % (label, score))

    def test_word_boundaries(self):
        # the original matched substrings: "debug" counted as "bug", "uneasy" as "easy"
        sa = self.collect("Debug mode", "We debugged it with the debugger; uneasy at first.")["sentiment_analysis"]
        self.assertEqual((sa["positive_keywords"], sa["negative_keywords"], sa["sentiment"]), (0, 0, "neutral"))
        sa = self.collect("Bugs", "Two bugs and three issues.")["sentiment_analysis"]
        self.assertEqual((sa["negative_keywords"], sa["sentiment"]), (2, "negative"))
        # documented limit: a product name with a keyword still counts
        sa = self.collect("Issue tracker", "We use the issue tracker daily.")["sentiment_analysis"]
        self.assertEqual((sa["negative_keywords"], sa["sentiment"]), (1, "negative"))
        # themes and emotion, whole words too: "helpful" is not "help", "fastidious" is not "fast"
        sa = self.collect("UI", "Helpful and fastidious design; the support team is pleased, I am confused")["sentiment_analysis"]
        self.assertEqual(sa["key_themes"], ["customer_support", "user_interface"])
        self.assertEqual(sa["emotion_detected"], "happy")
        sa = self.collect("Speed", "the feature is fast but I am frustrated and angry")["sentiment_analysis"]
        self.assertEqual(sa["key_themes"], ["product_features", "performance"])
        self.assertEqual(sa["emotion_detected"], "frustrated")

    # ------------------------------------------------------------ collect_feedback: routing

    def test_follow_up_days_and_escalation(self):
        def route(text, **kw):
            return self.collect("R", text, **kw)["routing"]
        for prio, days in (("critical", 1), ("high", 3), ("medium", 7), ("low", 14)):
            r = route("slow and broken", priority=prio)  # negative -> follow-up at any priority
            self.assertTrue(r["follow_up_required"])
            self.assertEqual(r["follow_up_days"], days)
            self.assertEqual(r["follow_up_by"], (today() + datetime.timedelta(days=days)).isoformat())
        r = route("fine", priority="medium")
        self.assertEqual((r["follow_up_required"], r["follow_up_by"], r["follow_up_days"]), (False, None, None))
        r = route("great", priority="low")
        self.assertFalse(r["follow_up_required"])
        self.assertTrue(route("fine", priority="high")["follow_up_required"])
        self.assertTrue(route("fine", priority="low", feedback_type="bug_report")["follow_up_required"])
        self.assertTrue(route("fine", priority="low", feedback_type="feature_request")["follow_up_required"])
        self.assertFalse(route("fine", priority="low", feedback_type="service_feedback")["follow_up_required"])
        # escalation: critical, or very_negative AND high
        self.assertTrue(route("fine", priority="critical")["escalation_required"])
        self.assertTrue(route("slow broken awful", priority="high")["escalation_required"])
        self.assertFalse(route("slow broken", priority="high")["escalation_required"])
        self.assertFalse(route("slow broken awful", priority="medium")["escalation_required"])
        out = self.collect("R", "slow broken awful", priority="high", tags=["b", "a", "a"], metadata={"k": 1})
        row = self.q("SELECT follow_up_required::text || escalation_required::text || follow_up_by::text || "
                     "(SELECT string_agg(tag, ',' ORDER BY tag) FROM feedback_tags t WHERE t.feedback_id = f.feedback_id) || "
                     "(metadata->>'k') FROM feedback f WHERE feedback_id = '%s'" % out["feedback_id"])
        self.assertEqual(row, "truetrue%sa,b1" % (today() + datetime.timedelta(days=3)).isoformat())
        act = self.q("SELECT count(*) FROM activity_log WHERE entity = 'feedback' AND entity_id = '%s' AND old_values IS NULL "
                     "AND new_values->>'sentiment' = 'very_negative'" % out["feedback_id"])
        self.assertEqual(act, "1")

    def test_assignee_routing(self):
        def who(**kw):
            return self.collect("R", "fine", **kw)["routing"]["assigned_to"]
        self.assertEqual(who(feedback_type="bug_report", category="billing", priority="critical"), "product-team@company.com")
        self.assertEqual(who(feedback_type="feature_request"), "product-team@company.com")
        self.assertEqual(who(category="Support", priority="critical"), "support-team@company.com")
        self.assertEqual(who(category="service"), "support-team@company.com")
        self.assertEqual(who(category="billing", priority="critical"), "finance-team@company.com")
        self.assertEqual(who(category="other", priority="critical"), "cs-leadership@company.com")
        self.assertEqual(who(category="other", priority="high"), "cs-team@company.com")

    def test_collect_validation(self):
        a = dict(FB_ARGS, client_id=self.cid("a"), title="T", content="C")
        self.invalid("collect_feedback", dict(a, submitter_email="not-an-email"), "submitter_email")
        self.invalid("collect_feedback", dict(a, feedback_type="praise"), "feedback_type")
        self.invalid("collect_feedback", dict(a, title="x" * 201), "title")
        self.invalid("collect_feedback", dict(a, priority="urgent"), "priority")
        self.invalid("collect_feedback", {k: v for k, v in a.items() if k != "content"})
        self.assertIn("title: must not be blank", self.fail_text("collect_feedback", dict(a, title="   ")))
        self.assertIn("content: must not be blank", self.fail_text("collect_feedback", dict(a, content=" ")))
        self.assertIn("client not found: %s_nobody" % self.p, self.fail_text("collect_feedback", dict(a, client_id=self.cid("nobody"))))

    # ------------------------------------------------------------ analyze_feedback_sentiment

    def test_aggregate_themes_comparison(self):
        out = self.call("analyze_feedback_sentiment", {"client_id": self.cid("s"), "period_start": day(10), "period_end": day(1)})
        self.assertEqual(out["period_days"], 10)
        self.assertEqual(out["total_feedback"], 5)
        self.assertEqual(out["sentiment_breakdown"]["counts"],
                         {"very_positive": 2, "positive": 1, "neutral": 1, "negative": 1, "very_negative": 0})
        self.assertEqual(out["sentiment_breakdown"]["distribution"]["very_positive"], 40.0)
        # (2 x 1.0 + 0.5 + 0 - 0.5) / 5 = 0.4
        self.assertEqual(out["overall_sentiment_score"], 0.4)
        self.assertEqual(out["overall_sentiment"], "positive")
        th = out["themes"]
        self.assertEqual(th["top_positive"], [{"theme": "product_features", "mentions": 3, "mean_sentiment": 0.7},
                                              {"theme": "user_interface", "mentions": 1, "mean_sentiment": 0.8}])
        self.assertEqual(th["top_negative"], [{"theme": "performance", "mentions": 2, "mean_sentiment": -0.25}])
        # product_features: 3 now, 1 before -> emerging (>= 3 and >= 2 x 1)
        self.assertEqual(th["emerging"], [{"theme": "product_features", "mentions": 3, "previous_mentions": 1}])
        cmp = out["comparison"]
        # previous: (0.5 + 0) / 2 = 0.25; (0.4 - 0.25) / 0.25 = +60 %
        self.assertEqual((cmp["previous_total"], cmp["previous_score"], cmp["percent_change"], cmp["trend"]),
                         (2, 0.25, 60.0, "improving"))
        self.assertEqual(out["critical_issues"], [])
        self.assertEqual(out["health_indicators"], {"status": "good", "score": 75})
        # type filter
        out = self.call("analyze_feedback_sentiment", {"client_id": self.cid("s"), "period_start": day(10), "period_end": day(1),
                                                       "feedback_types": ["bug_report", "feature_request"]})
        self.assertEqual(out["total_feedback"], 2)
        self.assertEqual(out["overall_sentiment_score"], 0.0)
        self.assertEqual(out["overall_sentiment"], "neutral")
        self.assertEqual(out["comparison"]["trend"], "no_baseline")
        self.assertEqual(out["health_indicators"], {"status": "fair", "score": 60})

    def test_critical_issues_and_declining(self):
        out = self.call("analyze_feedback_sentiment", {"client_id": self.cid("c"), "period_start": day(10), "period_end": day(0)})
        # (5 x -0.5 + -1.0) / 6 = -0.5833 -> negative; health < -0.3 -> critical 20
        self.assertEqual(out["overall_sentiment_score"], -0.583)
        self.assertEqual(out["overall_sentiment"], "negative")
        self.assertEqual(out["health_indicators"], {"status": "critical", "score": 20})
        self.assertEqual(out["critical_issues"], [
            {"theme": "customer_support", "mentions": 1, "mean_sentiment": -0.8, "severity": "high"},
            {"theme": "performance", "mentions": 5, "mean_sentiment": -0.5, "severity": "medium"}])
        out = self.call("analyze_feedback_sentiment", {"client_id": self.cid("d"), "period_start": day(10), "period_end": day(1)})
        self.assertEqual(out["overall_sentiment_score"], 0.333)
        self.assertEqual((out["comparison"]["percent_change"], out["comparison"]["trend"]), (-33.3, "declining"))
        # 0.333 >= 0.3 but declining -> fair 60, not good
        self.assertEqual(out["health_indicators"], {"status": "fair", "score": 60})
        out = self.call("analyze_feedback_sentiment", {"client_id": self.cid("d"), "period_start": day(10), "period_end": day(1),
                                                       "compare_to_previous": False, "include_themes": False, "include_nps": False})
        self.assertIsNone(out["comparison"])
        self.assertIsNone(out["themes"])
        self.assertIsNone(out["nps"])
        self.assertEqual(out["health_indicators"], {"status": "good", "score": 75})

    def test_aggregate_label_boundaries(self):
        got = self.q("SELECT string_agg(csmcp.fb_score_label(x), ',' ORDER BY x DESC) FROM unnest(ARRAY[0.6, 0.5999, 0.2, 0.1999, "
                     "-0.2, -0.2001, -0.6, -0.6001]::numeric[]) x")
        self.assertEqual(got, "very_positive,positive,positive,neutral,neutral,negative,negative,very_negative")

    def test_sentiment_validation(self):
        self.assertIn("in the future", self.fail_text("analyze_feedback_sentiment",
                                                      {"period_end": (today() + datetime.timedelta(days=1)).isoformat()}))
        self.assertIn("is after period_end", self.fail_text("analyze_feedback_sentiment",
                                                            {"period_start": day(1), "period_end": day(2)}))
        self.invalid("analyze_feedback_sentiment", {"feedback_types": ["praise"]})
        self.invalid("analyze_feedback_sentiment", {"period_start": "2026-13-01"})
        self.assertIn("client not found", self.fail_text("analyze_feedback_sentiment", {"client_id": self.cid("nobody")}))

    # ------------------------------------------------------------ share_product_insights

    def insight(self, prio, accounts, fbs, itype="bug_report", **kw):
        a = {"insight_type": itype, "title": "Export fails", "description": "d", "priority": prio,
             "supporting_feedback_ids": [self.fid(k) for k in fbs], "affected_customers": [self.cid("x%d" % i) for i in accounts],
             "customer_impact": "ci", "business_impact": "bi", "recommended_action": "ra"}
        a.update(kw)
        return self.call("share_product_insights", a)

    def test_business_value_thresholds(self):
        # high: 5 accounts 2 + high 2 + 5 items 1 + mean -0.8 < -0.3 -> 1.0 = 6.0; high AND >= 5 accounts -> executive
        out = self.insight("high", range(5), range(30, 35))
        self.assertEqual(out["impact_summary"]["business_value_score"], 6.0)
        self.assertEqual(out["impact_summary"]["urgency_level"], "high")
        self.assertTrue(out["delivery_summary"]["executive_escalation"])
        self.assertEqual(out["delivery_summary"]["recipients"], ["cs-leadership@company.com", "product-team@company.com"])
        self.assertEqual(out["insight_record"]["estimated_effort"], "Small to Medium")
        self.assertEqual(out["supporting_feedback"], {"count": 5, "avg_sentiment": -0.8, "positive_pct": 0.0,
                                                      "negative_pct": 100.0, "overall": "negative"})
        # high with 4 accounts: 1.6 + 2 + 1 + 1 = 5.6 -> not escalated (fewer than 5 accounts, < 8)
        out = self.insight("high", range(4), range(30, 35))
        self.assertEqual(out["impact_summary"]["business_value_score"], 5.6)
        self.assertFalse(out["delivery_summary"]["executive_escalation"])
        self.assertEqual(out["impact_summary"]["urgency_level"], "high")
        # medium: 10 accounts 4 + 1 + 10 items 2 + 1 = 8.0 -> urgent and executive by value
        out = self.insight("medium", range(10), range(30, 40), itype="feature_request")
        self.assertEqual(out["impact_summary"]["business_value_score"], 8.0)
        self.assertEqual(out["impact_summary"]["urgency_level"], "urgent")
        self.assertTrue(out["delivery_summary"]["executive_escalation"])
        self.assertEqual(out["insight_record"]["estimated_effort"], "Medium to Large")
        # medium: 5 accounts 2 + 1 + 10 items 2 + 1 = 6.0 -> high by value
        out = self.insight("medium", range(5), range(30, 40), itype="usability_feedback")
        self.assertEqual((out["impact_summary"]["business_value_score"], out["impact_summary"]["urgency_level"]), (6.0, "high"))
        self.assertEqual(out["insight_record"]["estimated_effort"], "Medium")
        # low: 5 accounts 2 + 0.5 + 5 neutral items 1 + mean 0 -> 0.5 = 4.0 -> medium
        out = self.insight("low", range(5), range(40, 45))
        self.assertEqual((out["impact_summary"]["business_value_score"], out["impact_summary"]["urgency_level"]), (4.0, "medium"))
        self.assertEqual(out["insight_record"]["estimated_effort"], "Small")
        self.assertEqual(out["supporting_feedback"]["overall"], "neutral")
        # low: 4 accounts 1.6 + 0.5 + 1 + 0.5 = 3.6 -> normal
        out = self.insight("low", range(4), range(40, 45))
        self.assertEqual((out["impact_summary"]["business_value_score"], out["impact_summary"]["urgency_level"]), (3.6, "normal"))
        self.assertFalse(out["delivery_summary"]["executive_escalation"])
        # critical: 3 + 0.4 + 0.2 + 0.5 (positive item) = 4.1 -> urgent and executive by priority
        out = self.insight("critical", [0], [50], target_recipients=["pm@example.com"], due_date=today().isoformat())
        self.assertEqual(out["impact_summary"]["business_value_score"], 4.1)
        self.assertEqual(out["impact_summary"]["urgency_level"], "urgent")
        self.assertEqual(out["delivery_summary"]["recipients"], ["cs-leadership@company.com", "pm@example.com"])
        self.assertEqual(out["supporting_feedback"]["overall"], "positive")
        self.assertEqual(out["tracking"]["suggested_review_date"], today().isoformat())
        pid = out["insight_id"]
        row = self.q("SELECT business_value_score || ' ' || urgency || ' ' || executive_escalation || ' ' || "
                     "(SELECT string_agg(feedback_id, ',') FROM product_insight_feedback WHERE insight_id = '%s') || ' ' || "
                     "(SELECT string_agg(client_id, ',') FROM product_insight_accounts WHERE insight_id = '%s') "
                     "FROM product_insights WHERE insight_id = '%s'" % (pid, pid, pid))
        self.assertEqual(row, "4.1 urgent true %s %s" % (self.fid(50), self.cid("x0")))

    def test_insight_refusals(self):
        base = {"insight_type": "bug_report", "title": "t", "description": "d", "priority": "low",
                "supporting_feedback_ids": [self.fid(30)], "affected_customers": [self.cid("x0")],
                "customer_impact": "ci", "business_impact": "bi", "recommended_action": "ra"}
        self.assertIn("feedback not found: FB-1", self.fail_text("share_product_insights", dict(base, supporting_feedback_ids=[self.fid(30), "FB-1"])))
        self.assertIn("client not found: %s" % self.cid("zz"), self.fail_text("share_product_insights", dict(base, affected_customers=[self.cid("zz")])))
        self.assertIn("due_date", self.fail_text("share_product_insights", dict(base, due_date=day(1))))
        self.invalid("share_product_insights", dict(base, supporting_feedback_ids=["TKT-1"]))
        self.invalid("share_product_insights", dict(base, supporting_feedback_ids=[]))
        self.invalid("share_product_insights", dict(base, insight_type="idea"), "insight_type")

    # ------------------------------------------------------------ scopes

    def test_read_key_cannot_write(self):
        d = lib.Csmcpd(workers=1, auth=True).start()
        try:
            tok = su.create_key(d.conf_path, "read", "feedback-read")
            s = lib.McpSession(d.port, token=tok)
            try:
                st, _, _ = s.request_raw("tools/call", {"name": "collect_feedback", "arguments": dict(
                    FB_ARGS, client_id=self.cid("a"), title="T", content="C")})
                self.assertEqual(st, 403)
                st, _, _ = s.request_raw("tools/call", {"name": "share_product_insights", "arguments": {}})
                self.assertEqual(st, 403)
                out = s.call_ok("analyze_feedback_sentiment", {"client_id": self.cid("s"), "period_start": day(10), "period_end": day(1)})
                self.assertEqual(out["total_feedback"], 5)
            finally:
                s.close()
        finally:
            d.stop()


def r1(x):
    """Round half away from zero to 1 dp, as PostgreSQL's numeric round()."""
    import decimal
    return float(decimal.Decimal(repr(x)).quantize(decimal.Decimal("0.1"), rounding=decimal.ROUND_HALF_UP))


class ProductUsageTest(lib.TestCase):
    """analyze_product_usage on four accounts with hand-made rollups (period = days 1..10 ago,
    previous = days 11..20 ago)."""

    @classmethod
    def setUpClass(cls):
        cls.url = lib.database_url()
        cls.p = du.prefix()
        c = cls.cid
        s = []
        for k in ("u1", "u2", "u3", "u4"):
            s.append("INSERT INTO accounts (client_id, client_name, company_name, tier) VALUES ('%s', '%s', 'F', 'starter');"
                     % (c(k), k.upper()))
        s.append("INSERT INTO contracts (contract_id, client_id, tier, contract_value, licensed_seats, start_date, end_date, status) "
                 "VALUES ('CTR-%s', '%s', 'starter', 1000, 10, csmcp.today() - 100, csmcp.today() + 200, 'active');" % (c("u1"), c("u1")))
        daily = lambda k, lo, hi, users, events: (
            "INSERT INTO usage_daily (client_id, day, active_users, events) SELECT '%s', csmcp.today() - d, %d, %d "
            "FROM generate_series(%d, %d) d;" % (c(k), users, events, lo, hi))
        # U1: 1100 events now vs 1000 before (+10 %, up); dashboard and reports used; alerts adopted 30 days
        # ago but unused (underutilised); 7 distinct users, 6 of them on >= 5 of 10 days (power users).
        s += [daily("u1", 1, 10, 6, 110), daily("u1", 11, 20, 6, 100),
              "INSERT INTO usage_feature_daily (client_id, day, feature_id, events, users) SELECT '%s', csmcp.today() - d, f, 55, 3 "
              "FROM generate_series(1, 10) d, unnest(ARRAY['dashboard', 'reports']) f;" % c("u1"),
              "INSERT INTO feature_adoption (client_id, feature_id, first_used_on) VALUES ('%s', 'dashboard', csmcp.today() - 40), "
              "('%s', 'reports', csmcp.today() - 40), ('%s', 'alerts', csmcp.today() - 30);" % (c("u1"), c("u1"), c("u1")),
              "INSERT INTO usage_daily_users (client_id, day, user_id) SELECT '%s', csmcp.today() - d, 'user' || u "
              "FROM generate_series(1, 5) d, generate_series(1, 6) u;" % c("u1"),
              "INSERT INTO usage_daily_users (client_id, day, user_id) VALUES ('%s', csmcp.today() - 9, 'user7');" % c("u1")]
        # U2: 90/day vs 100/day (-10 %, down); no contract, no per-user rows; peak 8 now, 12 in the 90 days.
        s += [daily("u2", 1, 10, 8, 90), daily("u2", 11, 20, 12, 100)]
        # U3: 105 vs 100 (+5.0 %, flat at the boundary).
        s += [daily("u3", 1, 10, 5, 105), daily("u3", 11, 20, 5, 100)]
        # U4: every catalogue feature used and adopted, 10 users on 10 seats, up -> capped at 100.
        s += ["INSERT INTO contracts (contract_id, client_id, tier, contract_value, licensed_seats, start_date, end_date, status) "
              "VALUES ('CTR-%s', '%s', 'starter', 1000, 10, csmcp.today() - 100, csmcp.today() + 200, 'active');" % (c("u4"), c("u4")),
              daily("u4", 1, 10, 10, 200), daily("u4", 11, 20, 10, 100),
              "INSERT INTO usage_feature_daily (client_id, day, feature_id, events, users) SELECT '%s', csmcp.today() - 1, feature_id, 1, 1 "
              "FROM features;" % c("u4"),
              "INSERT INTO feature_adoption (client_id, feature_id, first_used_on) SELECT '%s', feature_id, csmcp.today() - 5 FROM features;" % c("u4")]
        du.psql(cls.url, "\n".join(s))
        cls.d = lib.Csmcpd(workers=1).start()
        cls.s = cls.d.session()
        cls.schema = {t["name"]: t for t in cls.s.request("tools/list")["tools"]}["analyze_product_usage"]["outputSchema"]

    @classmethod
    def tearDownClass(cls):
        cls.s.close()
        cls.d.stop()

    @classmethod
    def cid(cls, k):
        return "%s_%s" % (cls.p, k)

    def usage(self, k, **kw):
        a = {"client_id": self.cid(k), "period_start": day(10), "period_end": day(1)}
        a.update(kw)
        out = self.s.call_ok("analyze_product_usage", a)
        self.assertEqual(du.schema_errors(self.schema, out), [])
        return out

    def catalogue(self):
        return int(du.psql(self.url, "SELECT count(*) FROM features"))

    def test_up_trend_power_users_and_expansion(self):
        n = self.catalogue()
        out = self.usage("u1")
        u = out["usage_analytics"]
        self.assertEqual((u["total_usage_events"], u["previous_period_events"], u["usage_growth_rate"], u["usage_trend"]),
                         (1100, 1000, 10.0, "up"))
        self.assertEqual((u["active_users"], u["active_users_source"], u["user_base"], u["user_base_source"]),
                         (7, "distinct_users", 10, "licensed_seats"))
        self.assertEqual((u["power_users"], u["inactive_users"], u["unique_features_used"], u["features_adopted"]), (6, 3, 2, 3))
        self.assertEqual(u["total_features_available"], n)
        self.assertEqual(u["feature_utilization_rate"], round(2 / n, 4))
        self.assertEqual(u["active_user_pct"], 0.7)
        self.assertEqual(out["trend_multiplier"], 1.1)
        self.assertEqual(out["usage_health_score"], r1(min((2 / n * 30 + 3 / n * 30 + 0.7 * 40) * 1.1, 100)))
        self.assertEqual(out["urgent_review"], out["usage_health_score"] < 60)
        self.assertEqual([f["feature_id"] for f in out["underutilized_features"]], ["alerts"])
        self.assertEqual([(f["feature_id"], f["events"]) for f in out["feature_breakdown"]], [("dashboard", 550), ("reports", 550)])
        self.assertEqual(out["opportunities"]["estimated_arr_potential"], 15000)
        self.assertEqual([o["type"] for o in out["opportunities"]["items"]], ["feature_upgrade", "tier_upgrade"])
        risks = [(r["risk"], r["severity"]) for r in out["risk_indicators"]]
        self.assertIn(("inactive_users", "medium"), risks)  # 30 % > 20 %
        self.assertNotIn("usage_declining", [r[0] for r in risks])
        self.assertEqual(("low_feature_utilization", "medium") in risks, 2 / n < 0.3)
        out = self.usage("u1", include_adoption_analysis=False, include_user_segmentation=False,
                         include_feature_breakdown=False, compare_to_benchmark=False)
        self.assertIsNone(out["underutilized_features"])
        self.assertIsNone(out["feature_breakdown"])
        self.assertIsNone(out["benchmark"])

    def test_down_and_flat_multipliers(self):
        n = self.catalogue()
        out = self.usage("u2")
        u = out["usage_analytics"]
        self.assertEqual((u["usage_growth_rate"], u["usage_trend"], out["trend_multiplier"]), (-10.0, "down", 0.9))
        self.assertEqual((u["active_users"], u["active_users_source"], u["user_base"], u["user_base_source"], u["power_users"]),
                         (8, "peak_daily_active_users", 12, "peak_daily_active_users_90d", None))
        self.assertEqual(out["usage_health_score"], r1(8 / 12 * 100 * 0.4 * 0.9))  # no features: 24.0
        self.assertTrue(out["urgent_review"])
        self.assertEqual([r["risk"] for r in out["risk_indicators"]],
                         ["usage_declining", "inactive_users", "low_feature_utilization"])
        self.assertEqual(out["risk_indicators"][0]["severity"], "high")
        out = self.usage("u3")
        self.assertEqual((out["usage_analytics"]["usage_growth_rate"], out["usage_analytics"]["usage_trend"], out["trend_multiplier"]),
                         (5.0, "flat", 1.0))
        self.assertEqual(out["usage_health_score"], 40.0)  # 5 of 5 peak users, no features
        self.assertEqual(out["opportunities"], {"items": [], "estimated_arr_potential": 0})
        self.assertTrue(n > 0)

    def test_cap_at_100(self):
        out = self.usage("u4")
        u = out["usage_analytics"]
        self.assertEqual((u["feature_utilization_rate"], u["feature_adoption_rate"], u["active_user_pct"], u["usage_trend"]),
                         (1.0, 1.0, 1.0, "up"))
        self.assertEqual(out["usage_health_score"], 100.0)  # 110 capped
        self.assertFalse(out["urgent_review"])
        self.assertEqual(out["risk_indicators"], [])
        self.assertEqual(out["benchmark"]["tier"], "starter")

    def test_refusals(self):
        r = self.s.call_tool("analyze_product_usage", {"client_id": self.cid("nobody")})
        self.assertTrue(r.get("isError"))
        self.assertIn("client not found", r["content"][0]["text"])
        r = self.s.call_tool("analyze_product_usage", {"client_id": self.cid("u1"), "period_start": day(1), "period_end": day(3)})
        self.assertTrue(r.get("isError"))
        self.assertIn("is after period_end", r["content"][0]["text"])
        r = self.s.call_tool("analyze_product_usage", {})
        self.assertTrue(r.get("isError"))


class VoiceOfCustomerTest(lib.TestCase):
    """manage_voice_of_customer on one account's hand-made feedback (days 1..10 ago)."""

    @classmethod
    def setUpClass(cls):
        cls.url = lib.database_url()
        cls.p = du.prefix()
        cls.n = random.randint(10000000, 80000000)
        c = cls.cid("v")

        def fb(k, label, score, days_ago, follow_by=None, responded=None):
            return ("INSERT INTO feedback (feedback_id, client_id, feedback_type, source, submitter_email, submitter_name, title, "
                    "content, category, sentiment, sentiment_score, created_at, follow_up_required, follow_up_by, response, responded_at) "
                    "VALUES ('%s', '%s', 'general', 'email', 'a@b.co', 'A', 'T', 'quote %d', 'other', '%s', %s, "
                    "now() - interval '%d days', %s, %s, %s, %s);"
                    % (cls.fid(k), c, k, label, score, days_ago, "true" if follow_by is not None else "false",
                       "csmcp.today() + (%d)" % follow_by if follow_by is not None else "NULL",
                       "'done'" if responded is not None else "NULL",
                       "now() - interval '%d days'" % responded if responded is not None else "NULL"))
        du.psql(cls.url, "\n".join([
            "INSERT INTO accounts (client_id, client_name, company_name) VALUES ('%s', 'V', 'F');" % c,
            fb(1, "negative", -0.5, 5, follow_by=-2, responded=3),   # answered 2 days after it came in
            fb(2, "negative", -0.5, 4, follow_by=-1),                # overdue by 1 day
            fb(3, "very_negative", -0.8, 2, follow_by=5),            # open, not due yet
            fb(4, "very_positive", 0.8, 3)]))                        # no follow-up needed
        cls.d = lib.Csmcpd(workers=1).start()
        cls.s = cls.d.session()

    @classmethod
    def tearDownClass(cls):
        cls.s.close()
        cls.d.stop()

    @classmethod
    def cid(cls, k):
        return "%s_%s" % (cls.p, k)

    @classmethod
    def fid(cls, k):
        return "FB-%d%03d" % (cls.n, k)

    def voc(self, **kw):
        a = {"client_id": self.cid("v"), "period_start": day(10), "period_end": day(0)}
        a.update(kw)
        return self.s.call_ok("manage_voice_of_customer", a)

    def fail_text(self, args):
        r = self.s.call_tool("manage_voice_of_customer", args)
        self.assertTrue(r.get("isError"), "%s should fail: %s" % (args, r))
        return r["content"][0]["text"]

    def test_1_track_and_close_loop(self):
        out = self.voc(action="track_feedback_loop")
        self.assertEqual(out["loop"], {"feedback_total": 4, "needing_follow_up": 3, "responded": 1, "open": 2, "overdue": 1,
                                       "responded_late": 0, "closure_rate": 0.3333, "mean_days_to_response": 2.0})
        self.assertEqual([(o["feedback_id"], o["days_overdue"]) for o in out["overdue_items"]], [(self.fid(2), 1)])
        out = self.s.call_ok("manage_voice_of_customer", {"action": "close_feedback_loop", "feedback_id": self.fid(3),
                                                         "response": "Fixed in 4.2, thank you"})
        self.assertTrue(out["on_time"])
        self.assertEqual((out["feedback"]["status"], out["feedback"]["response"]), ("resolved", "Fixed in 4.2, thank you"))
        out = self.s.call_ok("manage_voice_of_customer", {"action": "close_feedback_loop", "feedback_id": self.fid(2), "response": "Sorry"})
        self.assertFalse(out["on_time"])
        out = self.voc(action="track_feedback_loop")
        self.assertEqual((out["loop"]["responded"], out["loop"]["closure_rate"], out["loop"]["overdue"], out["loop"]["responded_late"]),
                         (3, 1.0, 0, 1))
        self.assertIn("loop already closed", self.fail_text({"action": "close_feedback_loop", "feedback_id": self.fid(3), "response": "again"}))
        self.assertIn("feedback FB-1 not found", self.fail_text({"action": "close_feedback_loop", "feedback_id": "FB-1", "response": "x"}))
        self.assertIn("response: required", self.fail_text({"action": "close_feedback_loop", "feedback_id": self.fid(4)}))
        act = du.psql(self.url, "SELECT old_values->>'responded_at' IS NULL AND new_values->>'response' = 'Sorry' FROM activity_log "
                                "WHERE entity_id = '%s' AND action = 'close_feedback_loop'" % self.fid(2))
        self.assertEqual(act, "t")

    def test_2_roadmap_report_summary_effectiveness(self):
        ins = self.s.call_ok("share_product_insights", {
            "insight_type": "feature_request", "title": "Bulk export", "description": "d", "priority": "high",
            "supporting_feedback_ids": [self.fid(1), self.fid(3)], "affected_customers": [self.cid("v")],
            "customer_impact": "c", "business_impact": "b", "recommended_action": "r"})
        pid = ins["insight_id"]
        self.assertIn("not on the roadmap yet", self.fail_text({"action": "update_customer_roadmap", "insight_id": pid, "roadmap_status": "planned"}))
        out = self.s.call_ok("manage_voice_of_customer", {"action": "update_customer_roadmap", "insight_id": pid, "roadmap_item": "Q3 export"})
        self.assertEqual((out["insight"]["roadmap_item"], out["insight"]["roadmap_status"]), ("Q3 export", "under_review"))
        out = self.s.call_ok("manage_voice_of_customer", {"action": "update_customer_roadmap", "insight_id": pid, "roadmap_status": "planned"})
        self.assertEqual(out["insight"]["roadmap_status"], "planned")
        self.assertIn("roadmap unchanged", self.fail_text({"action": "update_customer_roadmap", "insight_id": pid, "roadmap_status": "planned"}))
        self.assertIn("insight PI-1 not found", self.fail_text({"action": "update_customer_roadmap", "insight_id": "PI-1", "roadmap_item": "x"}))

        out = self.voc(action="create_voc_report", target_audience="product", report_type="weekly")
        rid = out["report_id"]
        self.assertRegex(rid, r"^VOC-[0-9]+$")
        self.assertEqual(out["delivery"]["recipients"], ["product-team@company.com"])
        rep = out["report"]
        self.assertEqual(rep["sentiment"]["total_feedback"], 4)
        self.assertEqual(rep["product_insights"]["count"], 1)
        self.assertEqual(rep["product_insights"]["on_roadmap"], 1)
        self.assertEqual([q["feedback_id"] for q in rep["customer_quotes"]["positive"]], [self.fid(4)])
        self.assertEqual([q["feedback_id"] for q in rep["customer_quotes"]["negative"]][0], self.fid(3))
        stored = du.psql(self.url, "SELECT report_type || ' ' || target_audience || ' ' || (content->'sentiment'->>'total_feedback') "
                                   "FROM voc_reports WHERE report_id = '%s'" % rid)
        self.assertEqual(stored, "weekly product 4")
        out = self.voc(action="create_voc_report", include_customer_quotes=False, include_sentiment=False)
        self.assertNotIn("customer_quotes", out["report"])
        self.assertNotIn("sentiment", out["report"])
        self.assertEqual(out["delivery"]["recipients"], ["cs-team@company.com", "executive-team@company.com", "product-team@company.com"])

        out = self.voc(action="generate_executive_summary")
        self.assertEqual(out["target_audience"], "executive")
        self.assertEqual(out["report"]["headline"]["feedback_items"], 4)
        self.assertEqual(out["report"]["top_insights"][0]["insight_id"], pid)

        out = self.voc(action="measure_program_effectiveness")
        self.assertEqual(out["current"]["loop"]["needing_follow_up"], 3)
        self.assertEqual(out["current"]["insights"]["count"], 1)
        self.assertEqual(out["feedback_linked_to_insights"], 2)
        self.assertEqual(out["previous"]["loop"]["feedback_total"], 0)
        self.assertEqual(out["change"]["feedback_total"], 4)

    def test_3_scopes_and_validation(self):
        r = self.s.call_tool("manage_voice_of_customer", {"action": "report"})
        self.assertTrue(r.get("isError"))
        self.assertIn("client not found", self.fail_text({"action": "track_feedback_loop", "client_id": self.cid("nobody")}))
        self.assertIn("in the future", self.fail_text({"action": "create_voc_report",
                                                       "period_end": (today() + datetime.timedelta(days=1)).isoformat()}))
        d = lib.Csmcpd(workers=1, auth=True).start()
        try:
            tok = su.create_key(d.conf_path, "read", "voc-read")
            s = lib.McpSession(d.port, token=tok)
            try:
                st, _, _ = s.request_raw("tools/call", {"name": "manage_voice_of_customer", "arguments": {"action": "create_voc_report"}})
                self.assertEqual(st, 403)
                st, _, _ = s.request_raw("tools/call", {"name": "manage_voice_of_customer",
                                                        "arguments": {"action": "close_feedback_loop", "feedback_id": self.fid(4), "response": "x"}})
                self.assertEqual(st, 403)
                out = s.call_ok("manage_voice_of_customer", {"action": "track_feedback_loop", "client_id": self.cid("v"),
                                                             "period_start": day(10)})
                self.assertEqual(out["loop"]["feedback_total"], 4)
            finally:
                s.close()
        finally:
            d.stop()


class CsMetricsTest(lib.TestCase):
    """track_cs_metrics on accounts with hand-made CSAT/CES/NPS responses and churn events;
    period = days 1..10 ago, previous = days 11..20 ago."""

    @classmethod
    def setUpClass(cls):
        cls.url = lib.database_url()
        cls.p = du.prefix()
        c = cls.cid
        s = []
        for k in ("m1", "m2", "m3", "m4"):
            s.append("INSERT INTO accounts (client_id, client_name, company_name, tier, created_at) VALUES ('%s', '%s', 'F', "
                     "'enterprise', now() - interval '400 days');" % (c(k), k.upper()))
        k = [0]

        def resp(acc, typ, scores, days_ago):
            out = []
            for sc in scores:
                k[0] += 1
                out.append("INSERT INTO csat_responses (response_id, client_id, survey_type, score, responded_at) VALUES "
                           "('%s-r%d', '%s', '%s', %d, now() - interval '%d days');" % (cls.p, k[0], c(acc), typ, sc, days_ago))
            return out
        s += resp("m1", "csat", [5, 4, 4, 5, 4], 3)          # 4.4 now
        s += resp("m1", "csat", [4, 4], 15)                  # 4.0 before -> +10 % up
        s += resp("m2", "csat", [5, 4, 4, 5, 4], 3)          # 4.4 now
        s += resp("m2", "csat", [5, 5, 5, 4, 5], 15)         # 4.8 before -> -8.3 % down
        s += resp("m3", "csat", [5, 4, 4, 4, 4], 3)          # 4.2 now
        s += resp("m3", "csat", [4], 15)                     # 4.0 before -> +5.0 % flat
        s += resp("m1", "ces", [3, 3], 3) + resp("m1", "ces", [4], 15)   # 3.0 vs 4.0: -25 % down
        s += ["INSERT INTO nps_responses (response_id, client_id, score, responded_at) VALUES "
              "('%s-n1', '%s', 10, now() - interval '2 days'), ('%s-n2', '%s', 9, now() - interval '2 days'), "
              "('%s-n3', '%s', 8, now() - interval '2 days'), ('%s-n4', '%s', 2, now() - interval '2 days');"
              % (cls.p, c("m4"), cls.p, c("m4"), cls.p, c("m4"), cls.p, c("m4")),
              "INSERT INTO revenue_events (client_id, kind, arr_delta, occurred_on) VALUES ('%s', 'churn', -1000, csmcp.today() - 4);" % c("m4")]
        du.psql(cls.url, "\n".join(s))
        cls.d = lib.Csmcpd(workers=1).start()
        cls.s = cls.d.session()
        cls.schema = {t["name"]: t for t in cls.s.request("tools/list")["tools"]}["track_cs_metrics"]["outputSchema"]

    @classmethod
    def tearDownClass(cls):
        du.psql(cls.url, "DELETE FROM cs_metric_benchmarks WHERE source = '%s'" % cls.p)
        cls.s.close()
        cls.d.stop()

    @classmethod
    def cid(cls, k):
        return "%s_%s" % (cls.p, k)

    def metric(self, k, mtype, **kw):
        a = {"metric_type": mtype, "client_id": self.cid(k), "period_start": day(10), "period_end": day(1)}
        a.update(kw)
        out = self.s.call_ok("track_cs_metrics", a)
        self.assertEqual(du.schema_errors(self.schema, out), [])
        return out

    def bench(self, mtype, value):
        du.psql(self.url, "INSERT INTO cs_metric_benchmarks (metric_type, value, source) VALUES ('%s', %s, '%s') "
                          "ON CONFLICT (metric_type) DO UPDATE SET value = EXCLUDED.value, source = EXCLUDED.source" % (mtype, value, self.p))

    def test_1_portfolio_trailing_benchmark(self):
        du.psql(self.url, "DELETE FROM cs_metric_benchmarks WHERE metric_type = 'csat'")
        out = self.metric("m1", "csat")
        want = du.psql(self.url, "SELECT round(avg(score), 2) FROM csat_responses WHERE survey_type = 'csat' AND "
                                 "responded_at >= (csmcp.today() - 365)::timestamp AT TIME ZONE 'UTC' AND "
                                 "responded_at < (csmcp.today())::timestamp AT TIME ZONE 'UTC'")
        self.assertEqual(out["benchmarks"]["source"], "portfolio_trailing_12_months")
        self.assertEqual(out["benchmarks"]["value"], float(want))

    def test_2_trend_and_health_bands(self):
        self.bench("csat", 4.0)
        cm = self.metric("m1", "csat")["current_metrics"]
        self.assertEqual((cm["value"], cm["previous_value"], cm["percent_change"], cm["trend_direction"]), (4.4, 4.0, 10.0, "up"))
        self.assertEqual((cm["formatted"], cm["health_status"]), ("4.4/5.0", "excellent"))   # ratio 1.1 exactly
        out = self.metric("m2", "csat")
        cm = out["current_metrics"]
        self.assertEqual((cm["percent_change"], cm["trend_direction"]), (-8.3, "down"))
        self.assertEqual(cm["health_status"], "good")           # ratio 1.1 but trend down
        self.assertEqual(out["benchmarks"], {"value": 4.0, "source": self.p, "ratio": 1.1})
        cm = self.metric("m3", "csat")["current_metrics"]
        self.assertEqual((cm["percent_change"], cm["trend_direction"]), (5.0, "flat"))   # +5.0 % is not > 5
        for value, status in ((4.01, "good"), (4.4, "good"), (4.6, "good"), (4.8, "fair"), (5.0, "fair"), (5.2, "poor")):
            self.bench("csat", value)
            self.assertEqual(self.metric("m1", "csat")["current_metrics"]["health_status"], status, value)
        # lower is better (ces): 3.0 vs 4.0 -> down; ratio 3.0 / b
        for value, status in ((3.4, "excellent"), (3.0, "good"), (2.8, "fair"), (2.6, "poor")):
            self.bench("ces", value)
            out = self.metric("m1", "ces")
            self.assertTrue(out["lower_is_better"])
            self.assertEqual((out["current_metrics"]["value"], out["current_metrics"]["trend_direction"]), (3.0, "down"))
            self.assertEqual(out["current_metrics"]["health_status"], status, value)
        self.assertEqual(out["current_metrics"]["formatted"], "3.0/7.0")

    def test_3_nps_churn_and_buckets(self):
        out = self.metric("m4", "nps", include_benchmarks=False)
        # 2 promoters, 1 passive, 1 detractor of 4: 50 - 25 = 25
        self.assertEqual((out["current_metrics"]["value"], out["current_metrics"]["formatted"]), (25.0, "25"))
        self.assertIsNone(out["benchmarks"])
        self.assertIsNone(out["current_metrics"]["trend_direction"])  # no previous responses
        out = self.metric("m4", "churn_rate")
        self.assertEqual((out["current_metrics"]["value"], out["current_metrics"]["previous_value"]), (1.0, 0.0))
        self.assertEqual((out["current_metrics"]["trend_direction"], out["current_metrics"]["percent_change"]), ("up", None))
        self.assertEqual(out["current_metrics"]["formatted"], "100.0%")
        self.assertEqual(self.metric("m4", "retention_rate")["current_metrics"]["value"], 0.0)
        self.assertEqual(self.metric("m1", "churn_rate")["current_metrics"]["value"], 0.0)
        out = self.metric("m1", "csat", granularity="daily")
        pts = out["trend_data"]
        self.assertEqual(len(pts), 10)
        self.assertEqual((pts[0]["period_start"], pts[-1]["period_end"]), (day(10), day(1)))
        self.assertEqual([p["value"] for p in pts if p["value"] is not None], [4.4])
        weekly = self.metric("m1", "csat", granularity="weekly")["trend_data"]
        self.assertEqual((weekly[0]["period_start"], weekly[-1]["period_end"]), (day(10), day(1)))
        for a, b in zip(weekly, weekly[1:]):
            self.assertEqual(datetime.date.fromisoformat(a["period_end"]) + datetime.timedelta(days=1),
                             datetime.date.fromisoformat(b["period_start"]))
        seg = self.metric("m1", "csat", segment_by=["tier", "industry"])["segmented_data"]
        self.assertEqual(seg["tier"], {"starter": None, "standard": None, "professional": None, "enterprise": 4.4})
        self.assertEqual(list(seg["industry"].values()), [4.4])

    def test_4_refusals(self):
        for bad in ({"metric_type": "arr"}, {"metric_type": "nps", "granularity": "hourly"}, {"metric_type": "nps", "segment_by": ["region"]}):
            r = self.s.call_tool("track_cs_metrics", bad)
            self.assertTrue(r.get("isError"), bad)
        r = self.s.call_tool("track_cs_metrics", {"metric_type": "nps", "granularity": "daily", "period_start": day(400), "period_end": day(0)})
        self.assertIn("daily allows at most 366 days", r["content"][0]["text"])
        r = self.s.call_tool("track_cs_metrics", {"metric_type": "nps", "client_id": self.cid("nobody")})
        self.assertIn("client not found", r["content"][0]["text"])


class SeededDemoTest(lib.TestCase):
    """The demo seed (csmcp.seed_part_feedback) gives every tool something to answer: feedback of
    all five labels over the year, responses, CES, insights with roadmap links."""

    @classmethod
    def setUpClass(cls):
        cls.url = lib.database_url()
        cls.d = lib.Csmcpd(workers=1).start()
        cls.s = cls.d.session()

    @classmethod
    def tearDownClass(cls):
        cls.s.close()
        cls.d.stop()

    def test_seeded_data_is_meaningful(self):
        seeded = int(du.psql(self.url, "SELECT count(*) FROM feedback WHERE feedback_id LIKE 'FB-9%' AND created_by = 'seed'"))
        self.assertGreater(seeded, 0, "seed_part_feedback did not run on the test database")
        out = self.s.call_ok("analyze_feedback_sentiment", {"period_start": day(364)})
        self.assertGreaterEqual(out["total_feedback"], seeded)
        self.assertTrue(all(v > 0 for v in out["sentiment_breakdown"]["counts"].values()), out["sentiment_breakdown"])
        self.assertTrue(out["themes"]["top_negative"])
        loop = self.s.call_ok("manage_voice_of_customer", {"action": "track_feedback_loop", "report_type": "annual"})["loop"]
        self.assertGreater(loop["responded"], 0)
        self.assertLess(loop["responded"], loop["needing_follow_up"])
        ces = self.s.call_ok("track_cs_metrics", {"metric_type": "ces", "period_start": day(364)})["current_metrics"]
        self.assertIsNotNone(ces["value"])
        rep = self.s.call_ok("manage_voice_of_customer", {"action": "create_voc_report", "report_type": "annual"})["report"]
        self.assertGreater(rep["product_insights"]["count"], 0)
        self.assertGreater(rep["product_insights"]["on_roadmap"], 0)
        urg = du.psql(self.url, "SELECT count(DISTINCT urgency) FROM product_insights WHERE insight_id LIKE 'PI-9%'")
        self.assertGreaterEqual(int(urg), 3)
        # seeded rows follow the same rules as collect_feedback
        bad = du.psql(self.url, "SELECT count(*) FROM feedback WHERE feedback_id LIKE 'FB-9%' AND "
                                "(sentiment <> csmcp.fb_sentiment(title, content)->>'sentiment' OR "
                                "assigned_to <> csmcp.fb_route(feedback_type, category, priority, sentiment)->>'assigned_to')")
        self.assertEqual(bad, "0")
