"""Issue 21: rollups behind the portfolio tools of helper "portf" equal a from-scratch SQL
computation after randomized (seeded, so reproducible) write sequences with concurrent writers.

Rollup: lifecycle_stay (migration 0155), the completed stays per account and lifecycle stage that
manage_lifecycle_stages averages per stage (average_stage_duration_days).
  * 4 concurrent writers, each a psql session running 50 transactions of random INSERT / UPDATE
    (changed_at, to_stage, client_id) / DELETE / multi-account statements on lifecycle_transitions
    of 6 shared fixture accounts - a fixed seed per writer, so a failure reproduces;
  * then csmcp.lifecycle_stay_check() (every row against the from-scratch window) and
    csmcp.portfolio_check() are empty, and the tool's average_stage_duration_days equals
    round(avg(...), 1) over every transition computed from scratch;
  * the check itself fails when the maintenance is off (the triggers disabled in a rolled-back
    transaction), so the test can fail.
"""
import json
import random

import data_util as du
import lib

STAGES = ["onboarding", "active", "at_risk", "churned", "expansion", "renewal"]

SCRATCH = """
SELECT coalesce(jsonb_object_agg(stage, days), '{}') FROM (
    SELECT to_stage AS stage, round(avg(extract(epoch FROM next_at - changed_at) / 86400)::numeric, 1) AS days
    FROM (SELECT to_stage, changed_at, lead(changed_at) OVER (PARTITION BY client_id ORDER BY changed_at, transition_id) AS next_at
          FROM lifecycle_transitions) l
    WHERE next_at IS NOT NULL GROUP BY to_stage) d
"""


class LifecycleStayEquality(lib.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.url = lib.database_url()
        cls.p = du.prefix()
        cls.clients = ["%s_%d" % (cls.p, i) for i in range(6)]
        du.psql(cls.url, "".join(
            "INSERT INTO accounts (client_id, client_name, company_name, tier, lifecycle_stage) "
            "VALUES ('%s', 'Stay %d', 'Stay %d Ltd', 'standard', 'active');" % (c, i, i) for i, c in enumerate(cls.clients)))
        # a starting history: 5 transitions each, 1-40 days apart (some at the same instant: the
        # transition_id breaks the tie)
        rnd = random.Random(2155)
        stmts = []
        for c in cls.clients:
            t = 400
            for k in range(5):
                t -= rnd.choice([0, 1, 7, 40])
                stmts.append("INSERT INTO lifecycle_transitions (client_id, from_stage, to_stage, changed_at) VALUES "
                             "('%s', NULL, '%s', now() - interval '%d days %d minutes');" % (c, rnd.choice(STAGES), t, k * 7))
        du.psql(cls.url, "".join(stmts))

    @classmethod
    def tearDownClass(cls):
        du.psql(cls.url, "DELETE FROM accounts WHERE client_id LIKE '%s\\_%%'" % cls.p)

    def writer(self, seed, errors):
        rnd = random.Random(seed)
        stmts = []
        for _ in range(50):
            c = rnd.choice(self.clients)
            op = rnd.random()
            if op < 0.35:
                stmts.append("INSERT INTO lifecycle_transitions (client_id, from_stage, to_stage, reason, changed_at) VALUES "
                             "('%s', NULL, '%s', 'w%d', now() - interval '%d hours');"
                             % (c, rnd.choice(STAGES), seed, rnd.randrange(0, 24 * 400)))
            elif op < 0.55:
                stmts.append("UPDATE lifecycle_transitions SET changed_at = changed_at - interval '%d hours' WHERE transition_id = "
                             "(SELECT min(transition_id) FROM lifecycle_transitions WHERE client_id = '%s' AND transition_id %% 3 = %d);"
                             % (rnd.randrange(-300, 300), c, rnd.randrange(3)))
            elif op < 0.65:   # moves a transition to another account
                stmts.append("UPDATE lifecycle_transitions SET client_id = '%s', to_stage = '%s' WHERE transition_id = "
                             "(SELECT max(transition_id) FROM lifecycle_transitions WHERE client_id = '%s');"
                             % (rnd.choice(self.clients), rnd.choice(STAGES), c))
            elif op < 0.8:
                stmts.append("DELETE FROM lifecycle_transitions WHERE transition_id = (SELECT min(transition_id) FROM "
                             "lifecycle_transitions WHERE client_id = '%s' AND transition_id %% 2 = %d);" % (c, rnd.randrange(2)))
            else:   # one statement over several accounts, several rows each
                a, b = rnd.sample(self.clients, 2)
                stmts.append("INSERT INTO lifecycle_transitions (client_id, from_stage, to_stage, changed_at) "
                             "SELECT c, NULL, (ARRAY['active','at_risk','renewal'])[1 + g %% 3], now() - g * interval '%d hours' "
                             "FROM unnest(ARRAY['%s', '%s']) c, generate_series(0, %d) g;"
                             % (rnd.randrange(1, 500), a, b, rnd.randrange(0, 4)))
        r = lib.psql_run(self.url, "\n".join(stmts), timeout=300)
        if r.returncode != 0:
            errors.append(r.stderr)

    def test_concurrent_random_writes_keep_lifecycle_stay_exact(self):
        self.assertEqual(du.run_writers(self.writer, [2155 + n for n in range(4)], timeout=300), [])
        self.assertEqual(du.psql(self.url, "SELECT count(*) FROM csmcp.lifecycle_stay_check()"), "0")
        self.assertEqual(du.psql(self.url, "SELECT count(*) FROM csmcp.portfolio_check()"), "0")
        self.assertGreater(int(du.psql(self.url, "SELECT count(*) FROM lifecycle_stay WHERE client_id LIKE '%s\\_%%'" % self.p)), 0)
        got = json.loads(du.psql(self.url, "SELECT csmcp.tool_manage_lifecycle_stages('{}', 'test') -> 'average_stage_duration_days'"))
        want = json.loads(du.psql(self.url, SCRATCH))
        self.assertEqual(got, want)
        # ... and the transition path of the tool itself (row lock, trigger, same transaction)
        r = json.loads(du.psql(self.url, "SELECT csmcp.tool_manage_lifecycle_stages('{\"client_id\": \"%s\", \"new_stage\": \"renewal\"}', "
                                         "'test')" % self.clients[0]))
        self.assertEqual(r["average_stage_duration_days"], json.loads(du.psql(self.url, SCRATCH)))
        self.assertEqual(du.psql(self.url, "SELECT count(*) FROM csmcp.lifecycle_stay_check()"), "0")

    def test_check_fails_without_maintenance(self):
        """With the triggers disabled (rolled back), a write makes the check report the account."""
        c = self.clients[1]
        out = du.psql(self.url, "BEGIN; ALTER TABLE lifecycle_transitions DISABLE TRIGGER lifecycle_stay_ins; "
                                "INSERT INTO lifecycle_transitions (client_id, to_stage, changed_at) VALUES ('%s', 'active', now()); "
                                "SELECT count(*) FROM csmcp.lifecycle_stay_check() WHERE client_id = '%s'; ROLLBACK;" % (c, c))
        self.assertNotEqual(out.split("\n")[-1], "0")

    def test_erasure_truncate_and_rebuild(self):
        """Account deletion (ON DELETE CASCADE) leaves no stays; portfolio_rebuild recomputes them."""
        c = "%s_gone" % self.p
        du.psql(self.url, "INSERT INTO accounts (client_id, client_name, company_name, tier, lifecycle_stage) "
                          "VALUES ('%s', 'Gone', 'Gone Ltd', 'starter', 'active'); "
                          "INSERT INTO lifecycle_transitions (client_id, to_stage, changed_at) "
                          "SELECT '%s', 'active', now() - k * interval '1 day' FROM generate_series(0, 3) k;" % (c, c))
        self.assertEqual(du.psql(self.url, "SELECT stays || '/' || (days = 3) FROM lifecycle_stay WHERE client_id = '%s'" % c), "3/true")
        du.psql(self.url, "DELETE FROM accounts WHERE client_id = '%s'" % c)
        self.assertEqual(du.psql(self.url, "SELECT count(*) FROM lifecycle_stay WHERE client_id = '%s'" % c), "0")
        du.psql(self.url, "SELECT csmcp.lifecycle_stay_rebuild()")
        self.assertEqual(du.psql(self.url, "SELECT count(*) FROM csmcp.lifecycle_stay_check()"), "0")


class NpsDailyEquality(lib.TestCase):
    """nps_daily (migration 0156): the NPS responses per UTC day that track_cs_metrics (the
    portfolio NPS and the trailing-12-month benchmark) and analyze_feedback_sentiment (portfolio
    NPS) read. 4 concurrent writers x 50 random inserts (around UTC midnight too), score and time
    updates, deletes and multi-row statements; then the check is empty and the portfolio figures
    equal the from-scratch count over several periods."""

    @classmethod
    def setUpClass(cls):
        cls.url = lib.database_url()
        cls.p = du.prefix()
        cls.clients = ["%s_%d" % (cls.p, i) for i in range(5)]
        du.psql(cls.url, "".join(
            "INSERT INTO accounts (client_id, client_name, company_name, tier, lifecycle_stage) "
            "VALUES ('%s', 'Nps %d', 'Nps %d Ltd', 'standard', 'active');" % (c, i, i) for i, c in enumerate(cls.clients)))

    @classmethod
    def tearDownClass(cls):
        du.psql(cls.url, "DELETE FROM accounts WHERE client_id LIKE '%s\\_%%'" % cls.p)

    def writer(self, seed, errors):
        rnd = random.Random(seed)
        stmts = []
        for k in range(50):
            c = rnd.choice(self.clients)
            op = rnd.random()
            # a time near a UTC midnight of the last 60 days, +-90 minutes
            at = "date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' - interval '%d days' + interval '%d minutes'" % (
                rnd.randrange(0, 60), rnd.randrange(-90, 90))
            if op < 0.4:
                stmts.append("INSERT INTO nps_responses (response_id, client_id, score, responded_at) VALUES ('%s_w%d_%d', '%s', %d, %s);"
                             % (self.p, seed, k, c, rnd.randrange(0, 11), at))
            elif op < 0.6:
                stmts.append("UPDATE nps_responses SET score = %d, responded_at = responded_at + interval '%d minutes' "
                             "WHERE response_id = (SELECT min(response_id) FROM nps_responses WHERE client_id = '%s');"
                             % (rnd.randrange(0, 11), rnd.randrange(-120, 120), c))
            elif op < 0.75:
                stmts.append("DELETE FROM nps_responses WHERE response_id = (SELECT max(response_id) FROM nps_responses "
                             "WHERE client_id = '%s');" % c)
            else:
                stmts.append("INSERT INTO nps_responses (response_id, client_id, score, responded_at) "
                             "SELECT '%s_m%d_%d_' || g, '%s', g %% 11, %s - g * interval '7 hours' FROM generate_series(0, %d) g;"
                             % (self.p, seed, k, c, at, rnd.randrange(1, 8)))
        r = lib.psql_run(self.url, "\n".join(stmts), timeout=300)
        if r.returncode != 0:
            errors.append(r.stderr)

    def test_concurrent_random_writes_keep_nps_daily_exact(self):
        self.assertEqual(du.run_writers(self.writer, [3156 + n for n in range(4)], timeout=300), [])
        self.assertGreater(int(du.psql(self.url, "SELECT count(*) FROM nps_responses WHERE client_id LIKE '%s\\_%%'" % self.p)), 0)
        self.assertEqual(du.psql(self.url, "SELECT count(*) FROM csmcp.nps_daily_check()"), "0")
        self.assertEqual(du.psql(self.url, "SELECT count(*) FROM csmcp.portfolio_check()"), "0")
        for a, b in ((1, 0), (30, 0), (364, 0), (60, 31), (0, 0)):
            want = du.psql(self.url, "SELECT CASE WHEN count(*) > 0 THEN round(100.0 * (count(*) FILTER (WHERE score >= 9) - "
                                     "count(*) FILTER (WHERE score <= 6)) / count(*), 1) END || '/' || count(*) FROM nps_responses "
                                     "WHERE responded_at >= (csmcp.today() - %d)::timestamp AT TIME ZONE 'UTC' "
                                     "AND responded_at < (csmcp.today() - %d + 1)::timestamp AT TIME ZONE 'UTC'" % (a, b))
            got = du.psql(self.url, "SELECT csmcp.fb_metric('nps', NULL, NULL, NULL, csmcp.today() - %d, csmcp.today() - %d) || '/' || "
                                    "(csmcp.fb_nps(NULL, csmcp.today() - %d, csmcp.today() - %d) ->> 'responses')" % (a, b, a, b))
            self.assertEqual(got, want, "days -%d..-%d" % (a, b))
        # the tool's benchmark (the portfolio's trailing 12 months) through the same rollup
        r = json.loads(du.psql(self.url, "SELECT csmcp.tool_track_cs_metrics('{\"metric_type\": \"nps\", \"client_id\": \"%s\"}', 'test')"
                                         % self.clients[0]))
        if r["benchmarks"]["source"] == "portfolio_trailing_12_months":
            want = du.psql(self.url, "SELECT round(100.0 * (count(*) FILTER (WHERE score >= 9) - count(*) FILTER (WHERE score <= 6)) "
                                     "/ count(*), 1) FROM nps_responses WHERE responded_at >= (csmcp.today() - 364)::timestamp "
                                     "AT TIME ZONE 'UTC' AND responded_at < (csmcp.today() + 1)::timestamp AT TIME ZONE 'UTC'")
            self.assertEqual(str(r["benchmarks"]["value"]), want)

    def test_check_fails_without_maintenance(self):
        c = self.clients[2]
        out = du.psql(self.url, "BEGIN; ALTER TABLE nps_responses DISABLE TRIGGER nps_daily_ins; "
                                "INSERT INTO nps_responses (response_id, client_id, score) VALUES ('%s_x', '%s', 10); "
                                "SELECT count(*) FROM csmcp.nps_daily_check(); ROLLBACK;" % (self.p, c))
        self.assertNotEqual(out.split("\n")[-1], "0")

    def test_erasure_and_rebuild(self):
        c = "%s_gone" % self.p
        du.psql(self.url, "INSERT INTO accounts (client_id, client_name, company_name, tier, lifecycle_stage) "
                          "VALUES ('%s', 'Gone', 'Gone Ltd', 'starter', 'active'); "
                          "INSERT INTO nps_responses (response_id, client_id, score) SELECT '%s_' || g, '%s', g FROM generate_series(0, 10) g;"
                          % (c, c, c))
        self.assertEqual(du.psql(self.url, "SELECT count(*) FROM csmcp.nps_daily_check()"), "0")
        du.psql(self.url, "DELETE FROM accounts WHERE client_id = '%s'" % c)
        self.assertEqual(du.psql(self.url, "SELECT count(*) FROM csmcp.nps_daily_check()"), "0")
        du.psql(self.url, "SELECT csmcp.nps_daily_rebuild()")
        self.assertEqual(du.psql(self.url, "SELECT count(*) FROM csmcp.nps_daily_check()"), "0")


class CsatDailyEquality(lib.TestCase):
    """csat_daily (migration 0159): CSAT/CES responses per UTC day that track_cs_metrics' portfolio
    csat/ces reads. 4 concurrent writers x 50 random inserts around UTC midnights, score/time/type
    updates, deletes and multi-row inserts; then the check is empty and the portfolio means equal
    round(avg(score), 2) from scratch over several periods."""

    @classmethod
    def setUpClass(cls):
        cls.url = lib.database_url()
        cls.p = du.prefix()
        cls.clients = ["%s_%d" % (cls.p, i) for i in range(5)]
        du.psql(cls.url, "".join(
            "INSERT INTO accounts (client_id, client_name, company_name, tier, lifecycle_stage) "
            "VALUES ('%s', 'Csat %d', 'Csat %d Ltd', 'standard', 'active');" % (c, i, i) for i, c in enumerate(cls.clients)))

    @classmethod
    def tearDownClass(cls):
        du.psql(cls.url, "DELETE FROM accounts WHERE client_id LIKE '%s\\_%%'" % cls.p)

    def writer(self, seed, errors):
        rnd = random.Random(seed)
        stmts = []
        for k in range(50):
            c = rnd.choice(self.clients)
            op = rnd.random()
            at = "date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' - interval '%d days' + interval '%d minutes'" % (
                rnd.randrange(0, 60), rnd.randrange(-90, 90))
            if op < 0.4:
                stmts.append("INSERT INTO csat_responses (response_id, client_id, survey_type, score, responded_at) "
                             "VALUES ('%s_w%d_%d', '%s', 'csat', %d, %s);" % (self.p, seed, k, c, rnd.randrange(1, 6), at))
            elif op < 0.6:
                stmts.append("UPDATE csat_responses SET score = %d, survey_type = '%s', responded_at = responded_at + interval '%d minutes' "
                             "WHERE response_id = (SELECT min(response_id) FROM csat_responses WHERE client_id = '%s');"
                             % (rnd.randrange(1, 6), rnd.choice(["csat", "ces"]), rnd.randrange(-120, 120), c))
            elif op < 0.75:
                stmts.append("DELETE FROM csat_responses WHERE response_id = (SELECT max(response_id) FROM csat_responses "
                             "WHERE client_id = '%s');" % c)
            else:
                stmts.append("INSERT INTO csat_responses (response_id, client_id, survey_type, score, responded_at) "
                             "SELECT '%s_m%d_%d_' || g, '%s', (ARRAY['csat','ces'])[1 + g %% 2], 1 + g %% 5, %s - g * interval '7 hours' "
                             "FROM generate_series(0, %d) g;" % (self.p, seed, k, c, at, rnd.randrange(1, 8)))
        r = lib.psql_run(self.url, "\n".join(stmts), timeout=300)
        if r.returncode != 0:
            errors.append(r.stderr)

    def test_concurrent_random_writes_keep_csat_daily_exact(self):
        self.assertEqual(du.run_writers(self.writer, [4159 + n for n in range(4)], timeout=300), [])
        self.assertGreater(int(du.psql(self.url, "SELECT count(*) FROM csat_responses WHERE client_id LIKE '%s\\_%%'" % self.p)), 0)
        self.assertEqual(du.psql(self.url, "SELECT count(*) FROM csmcp.csat_daily_check()"), "0")
        self.assertEqual(du.psql(self.url, "SELECT count(*) FROM csmcp.portfolio_check()"), "0")
        for t in ("csat", "ces"):
            for a, b in ((1, 0), (30, 0), (364, 0), (60, 31), (0, 0)):
                want = du.psql(self.url, "SELECT round(avg(score), 2) FROM csat_responses WHERE survey_type = '%s' "
                                         "AND responded_at >= (csmcp.today() - %d)::timestamp AT TIME ZONE 'UTC' "
                                         "AND responded_at < (csmcp.today() - %d + 1)::timestamp AT TIME ZONE 'UTC'" % (t, a, b))
                got = du.psql(self.url, "SELECT csmcp.fb_metric('%s', NULL, NULL, NULL, csmcp.today() - %d, csmcp.today() - %d)" % (t, a, b))
                self.assertEqual(got, want, "%s days -%d..-%d" % (t, a, b))

    def test_check_fails_without_maintenance(self):
        out = du.psql(self.url, "BEGIN; ALTER TABLE csat_responses DISABLE TRIGGER csat_daily_ins; "
                                "INSERT INTO csat_responses (response_id, client_id, score) VALUES ('%s_x', '%s', 5); "
                                "SELECT count(*) FROM csmcp.csat_daily_check(); ROLLBACK;" % (self.p, self.clients[0]))
        self.assertNotEqual(out.split("\n")[-1], "0")
