"""Issue 21: the fast seed (csmcpctl seed --accounts 100000 in minutes) computes what the tools
would: csmcp.seed_health_bulk (one set-based health calculation for many accounts) stores exactly
what csmcp.tool_calculate_health_score stores for each of them (components, score, previous score,
change, trend, risk, churn, risk indicators, the account's health_score/health_trend), demo ids
stay unique past 99,999 accounts, and seed_demo reports the time of every part.

The two calculations run in two transactions on the same committed state (both rolled back), with
the previous scores first moved by a deterministic -12..+12 so every trend branch is taken."""
import data_util as du
import lib

# Stored per account by one calculation, compared field by field.
PROBE = r"""
BEGIN;
UPDATE health_scores h SET overall_score = greatest(0, least(100, h.overall_score + (abs(hashtext(h.client_id)) %% 25) - 12))
WHERE h.score_id IN (SELECT DISTINCT ON (client_id) score_id FROM health_scores WHERE client_id LIKE 'demo\_%%'
                     ORDER BY client_id, calculated_at DESC, score_id DESC);
SELECT max(score_id) AS before FROM health_scores \gset
%s
SELECT h.client_id || '|' || concat_ws(',', h.usage_score, h.engagement_score, h.support_score, h.satisfaction_score,
       h.payment_score, h.usage_weight, h.engagement_weight, h.support_weight, h.satisfaction_weight, h.payment_weight,
       h.overall_score, coalesce(h.score_change::text, 'null'), h.trend, h.risk_level, h.churn_probability, h.lookback_days,
       h.scoring_model, h.calculated_by, coalesce(h.scorecard_id, '-'), a.health_score, a.health_trend) || '|' ||
       coalesce((SELECT string_agg(concat_ws(':', r.indicator, r.severity, r.current_value, r.threshold), ';' ORDER BY r.indicator)
                 FROM risk_indicators r WHERE r.score_id = h.score_id), '')
FROM health_scores h JOIN accounts a USING (client_id)
WHERE h.score_id > :before ORDER BY h.client_id;
ROLLBACK;
"""


class SeedScaleTest(lib.TestCase):
    def rows(self, url, calc):
        out = du.psql(url, PROBE % calc)
        return [x for x in out.split("\n") if x.count("|") == 2]

    def test_bulk_health_equals_the_tool(self):
        url = lib.database_url()
        n = int(du.psql(url, "SELECT count(*) FROM accounts WHERE client_id LIKE 'demo\\_%'"))
        self.assertGreater(n, 20, "the test database is seeded (scripts/dev test seeds 200)")
        tool = self.rows(url, "SELECT count(csmcp.tool_calculate_health_score(jsonb_build_object('client_id', client_id), 'seed')) "
                              "FROM (SELECT client_id FROM accounts WHERE client_id LIKE 'demo\\_%' ORDER BY client_id) a;")
        bulk = self.rows(url, "SELECT csmcp.seed_health_bulk(ARRAY(SELECT client_id FROM accounts WHERE client_id LIKE "
                              "'demo\\_%' ORDER BY client_id), 'seed');")
        self.assertEqual(len(tool), n)
        self.assertEqual(bulk, tool)
        # every trend and several risk levels were exercised
        trends = {r.split("|")[1].split(",")[12] for r in tool}
        self.assertEqual(trends, {"improving", "stable", "declining"})
        self.assertGreaterEqual(len({r.split("|")[1].split(",")[13] for r in tool}), 2)
        self.assertTrue(any(r.split("|")[2] for r in tool))  # some risk indicators

    def test_bulk_falls_back_to_the_tool_under_an_active_scorecard(self):
        url = lib.database_url()
        src = du.psql(url, "SELECT prosrc FROM pg_proc WHERE proname = 'seed_health_bulk'")
        self.assertIn("status = 'active'", src)
        self.assertIn("tool_calculate_health_score", src)

    def test_demo_ids_unique_past_99999(self):
        url = lib.database_url()
        self.assertEqual(du.psql(url, "SELECT concat_ws(',', csmcp.seed_client_id(1), csmcp.seed_client_id(99999), "
                                      "csmcp.seed_client_id(100000), csmcp.seed_client_id(1000000))"),
                         "demo_00001,demo_99999,demo_100000,demo_1000000")
        self.assertEqual(du.psql(url, "SELECT count(DISTINCT csmcp.seed_client_id(i)) FROM generate_series(1, 200000) i"),
                         "200000")

    def test_seed_reports_the_time_of_every_part(self):
        url = lib.database_url()
        out = du.psql(url, "BEGIN; SELECT csmcp.seed_demo(12)::text; ROLLBACK;")
        line = [x for x in out.split("\n") if x.startswith("{")][0]
        import json
        res = json.loads(line)
        parts = du.psql(url, "SELECT string_agg(substr(proname, 11), ',' ORDER BY proname) FROM pg_proc WHERE "
                             "pronamespace = 'csmcp'::regnamespace AND proname LIKE 'seed\\_part\\_%'").split(",")
        self.assertEqual(set(res["timing_ms"]), {"base", "health", "rollups", "constraints", "total"} | set(parts))
        self.assertEqual(res["health_scores"], 12)
        for p in parts:
            self.assertIn(p, res)

    def test_bulk_mode_leaves_the_schema_identical(self):
        """Large seeds drop foreign keys and usage indexes and re-create them (seed_bulk_begin/end):
        the constraints and indexes afterwards are exactly those before, and the rows are the
        same as the per-row path's."""
        url = lib.database_url()
        sig = ("SELECT md5(string_agg(x, ';' ORDER BY x)) FROM ("
               "SELECT conrelid::regclass || ' ' || conname || ' ' || pg_get_constraintdef(oid) AS x FROM pg_constraint "
               "WHERE connamespace = 'public'::regnamespace UNION ALL "
               "SELECT pg_get_indexdef(indexrelid) FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid "
               "WHERE c.relnamespace = 'public'::regnamespace) s;")
        rows = ("SELECT md5(string_agg(concat_ws('|', client_id, day, active_users, events), ',' ORDER BY client_id, day)) "
                "FROM usage_daily WHERE client_id LIKE 'demo\\_%'; "
                "SELECT md5(string_agg(concat_ws('|', client_id, day, feature_id, events), ',' ORDER BY client_id, day, feature_id)) "
                "FROM usage_feature_daily WHERE client_id LIKE 'demo\\_%';")
        before = du.psql(url, sig)
        out = du.psql(url, "BEGIN; SET LOCAL csmcp.seed_bulk = 'on'; SELECT csmcp.seed_bulk_possible(); "
                           "SELECT count(*) > 0 FROM (SELECT csmcp.seed_demo(12)) s; " + sig + rows + " ROLLBACK;").split("\n")
        plain = du.psql(url, "BEGIN; SELECT count(*) > 0 FROM (SELECT csmcp.seed_demo(12)) s; " + rows + " ROLLBACK;").split("\n")
        out = [x for x in out if x not in ("BEGIN", "ROLLBACK", "SET")]
        plain = [x for x in plain if x not in ("BEGIN", "ROLLBACK")]
        self.assertEqual(out[0], "t", "the test database role owns the tables")
        self.assertEqual(out[2], before)
        self.assertEqual(out[3:], plain[1:])
        self.assertEqual(du.psql(url, sig), before)

    def test_ttv_bulk_equals_onb_ttv(self):
        """The onboarding part stores the time to value of every completed plan from
        csmcp.seed_onb_ttv_bulk (one statement for all accounts) instead of csmcp.onb_ttv per
        account: both agree on every demo account, including accounts whose first contract
        moved later than their usage (value by M3) and accounts that never reached value."""
        url = lib.database_url()
        q = ("SELECT string_agg(concat_ws(':', client_id, coalesce(ttv_days::text, '-'), reached), ',' ORDER BY client_id) FROM (%s) s")
        one = ("SELECT client_id, (x ->> 'ttv_days')::integer AS ttv_days, (x ->> 'reached')::boolean AS reached "
               "FROM (SELECT client_id, csmcp.onb_ttv(client_id) AS x FROM accounts WHERE client_id LIKE 'demo\\_%') a")
        bulk = "SELECT * FROM csmcp.seed_onb_ttv_bulk(ARRAY(SELECT client_id FROM accounts WHERE client_id LIKE 'demo\\_%'))"
        # Shift some first contracts and raise some seats so that every branch is taken.
        shift = ("UPDATE contracts SET licensed_seats = licensed_seats * 50 WHERE client_id LIKE 'demo\\_%' "
                 "AND abs(hashtext(client_id)) % 3 = 0; "
                 "UPDATE contracts SET start_date = start_date + 20 WHERE client_id LIKE 'demo\\_%' AND abs(hashtext(client_id)) % 4 = 1; ")
        out = du.psql(url, "BEGIN; " + shift + (q % one) + "; " + (q % bulk) + "; ROLLBACK;").split("\n")
        rows = [x for x in out if x.startswith("demo_")]
        self.assertEqual(len(rows), 2)
        self.assertEqual(rows[1], rows[0])
        vals = rows[0].split(",")
        self.assertGreater(len(vals), 20)
        self.assertTrue(any(v.endswith(":t") for v in vals) and any(v.endswith(":f") for v in vals), vals[:20])
