"""Issue 21: rollups behind the portfolio tools of helper "portf" equal a from-scratch SQL
computation after randomized (seeded, so reproducible) write sequences with concurrent writers.

Rollups: lifecycle_stay (migration 0155), the completed stays per account and lifecycle stage that
manage_lifecycle_stages averages per stage (average_stage_duration_days), with their per-stage
totals lifecycle_stay_totals and the transitions per UTC day lifecycle_trans_daily (migration
0290: the average and stage_transitions_90d).
  * 4 concurrent writers, each a psql session running 50 transactions of random INSERT / UPDATE
    (changed_at, from_stage, to_stage, client_id) / DELETE / multi-account statements on
    lifecycle_transitions of 6 shared fixture accounts, many of them near the 90-day window's
    start and today's UTC midnight (and after now) - a fixed seed per writer, so a failure
    reproduces;
  * then csmcp.lifecycle_stay_check(), csmcp.lifecycle_rollups_check() and
    csmcp.portfolio_check() are empty, and the tool's answers (portfolio, per current_stage, one
    client) equal tool_manage_lifecycle_stages_scratch's (every figure from the base tables) in
    the same statement, so at the same now();
  * the checks themselves fail when the maintenance is off (the triggers disabled in a
    rolled-back transaction), and so does the equality with the reference, so the test can fail.
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
                frm, to = cls.stage_pair(rnd)
                stmts.append("INSERT INTO lifecycle_transitions (client_id, from_stage, to_stage, changed_at) VALUES "
                             "('%s', %s, '%s', now() - interval '%d days %d minutes');" % (c, frm, to, t, k * 7))
        du.psql(cls.url, "".join(stmts))

    @staticmethod
    def stage_pair(rnd):
        """(from_stage as SQL, to_stage): from_stage NULL one time in four, else another stage."""
        to = rnd.choice(STAGES)
        frm = rnd.choice([s for s in STAGES if s != to] + [None])
        return ("'%s'" % frm if frm and rnd.random() < 0.75 else "NULL"), to

    @staticmethod
    def instant(rnd):
        """A changed_at: anywhere in the last 400 days, or within a day of the 90-day window's start,
        or within two hours of today's UTC midnight, or of now (the window's partial days, and
        later than now)."""
        r = rnd.random()
        if r < 0.35:
            return "now() - interval '%d hours'" % rnd.randrange(0, 24 * 400)
        if r < 0.6:
            return "now() - interval '90 days' + interval '%d minutes'" % rnd.randrange(-1500, 1500)
        if r < 0.8:
            return "date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' + interval '%d minutes'" % rnd.randrange(-120, 120)
        return "now() + interval '%d minutes'" % rnd.randrange(-120, 120)

    def writer(self, seed, errors):
        rnd = random.Random(seed)
        stmts = []
        for _ in range(50):
            c = rnd.choice(self.clients)
            op = rnd.random()
            frm, to = self.stage_pair(rnd)
            if op < 0.3:
                stmts.append("INSERT INTO lifecycle_transitions (client_id, from_stage, to_stage, reason, changed_at) VALUES "
                             "('%s', %s, '%s', 'w%d', %s);" % (c, frm, to, seed, self.instant(rnd)))
            elif op < 0.45:
                stmts.append("UPDATE lifecycle_transitions SET changed_at = changed_at - interval '%d hours' WHERE transition_id = "
                             "(SELECT min(transition_id) FROM lifecycle_transitions WHERE client_id = '%s' AND transition_id %% 3 = %d);"
                             % (rnd.randrange(-300, 300), c, rnd.randrange(3)))
            elif op < 0.55:   # moves a transition to another account, with other stages and time
                stmts.append("UPDATE lifecycle_transitions SET client_id = '%s', from_stage = %s, to_stage = '%s', changed_at = %s "
                             "WHERE transition_id = (SELECT max(transition_id) FROM lifecycle_transitions WHERE client_id = '%s');"
                             % (rnd.choice(self.clients), frm, to, self.instant(rnd), c))
            elif op < 0.65:   # the from_stage of all an account's transitions into one stage
                stmts.append("UPDATE lifecycle_transitions SET from_stage = %s WHERE client_id = '%s' AND to_stage = '%s';"
                             % (frm, c, to))
            elif op < 0.8:
                stmts.append("DELETE FROM lifecycle_transitions WHERE transition_id = (SELECT min(transition_id) FROM "
                             "lifecycle_transitions WHERE client_id = '%s' AND transition_id %% 2 = %d);" % (c, rnd.randrange(2)))
            else:   # one statement over several accounts, several rows each
                a, b = rnd.sample(self.clients, 2)
                stmts.append("INSERT INTO lifecycle_transitions (client_id, from_stage, to_stage, changed_at) "
                             "SELECT c, (ARRAY['onboarding', NULL, 'expansion'])[1 + g %% 3], (ARRAY['active','at_risk','renewal'])[1 + g %% 3], "
                             "%s - g * interval '%d hours' FROM unnest(ARRAY['%s', '%s']) c, generate_series(0, %d) g;"
                             % (self.instant(rnd), rnd.randrange(1, 500), a, b, rnd.randrange(0, 4)))
        r = lib.psql_run(self.url, "\n".join(stmts), timeout=300)
        if r.returncode != 0:
            errors.append(r.stderr)

    def tool_and_reference(self, args):
        """The tool's answer and the reference's, computed in one statement (the same now())."""
        a = json.dumps(args).replace("'", "''")
        return json.loads(du.psql(self.url, "SELECT jsonb_build_array(csmcp.tool_manage_lifecycle_stages('%s', 'test'), "
                                            "csmcp.tool_manage_lifecycle_stages_scratch('%s', 'test'))" % (a, a)))

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
        self.assertEqual(du.psql(self.url, "SELECT count(*) FROM csmcp.lifecycle_rollups_check()"), "0")
        # the 90-day transitions and the averages against the reference: portfolio, per stage, one client
        for args in [{}] + [{"current_stage": st} for st in STAGES] + [{"client_id": self.clients[2]}]:
            got, want = self.tool_and_reference(args)
            self.assertEqual(got, want, args)
        # the writers' rows are in the window, on both partial days too
        self.assertGreater(int(du.psql(self.url, "SELECT count(*) FROM lifecycle_transitions WHERE client_id LIKE '%s\\_%%' "
                                                 "AND from_stage IS NOT NULL AND changed_at > now() - interval '90 days' "
                                                 "AND changed_at < (((now() - interval '90 days') AT TIME ZONE 'UTC')::date + 1)::timestamp AT TIME ZONE 'UTC'"
                                                 % self.p)), 0)
        self.assertGreater(int(du.psql(self.url, "SELECT count(*) FROM lifecycle_transitions WHERE client_id LIKE '%s\\_%%' "
                                                 "AND from_stage IS NOT NULL AND changed_at > now()" % self.p)), 0)

    def test_check_fails_without_maintenance(self):
        """With the triggers disabled (rolled back), a write makes the check report the account."""
        c = self.clients[1]
        out = du.psql(self.url, "BEGIN; ALTER TABLE lifecycle_transitions DISABLE TRIGGER lifecycle_stay_ins; "
                                "INSERT INTO lifecycle_transitions (client_id, to_stage, changed_at) VALUES ('%s', 'active', now()); "
                                "SELECT count(*) FROM csmcp.lifecycle_stay_check() WHERE client_id = '%s'; ROLLBACK;" % (c, c))
        self.assertNotEqual(out.split("\n")[-1], "0")

    def test_rollups_check_and_reference_fail_without_maintenance(self):
        """A transition written with the triggers off (rolled back): lifecycle_rollups_check reports the
        day and the stage totals, and the tool's answer no longer equals the reference's."""
        c = self.clients[3]
        out = du.psql(self.url, "BEGIN; ALTER TABLE lifecycle_transitions DISABLE TRIGGER lifecycle_stay_ins; "
                                "INSERT INTO lifecycle_transitions (client_id, from_stage, to_stage, changed_at) "
                                "VALUES ('%s', 'active', 'at_risk', now() - interval '3 days'), ('%s', 'at_risk', 'renewal', now()); "
                                "SELECT string_agg(DISTINCT what, ',' ORDER BY what) FROM csmcp.lifecycle_rollups_check(); "
                                "SELECT csmcp.tool_manage_lifecycle_stages('{}', 'test') -> 'stage_transitions_90d' = "
                                "csmcp.tool_manage_lifecycle_stages_scratch('{}', 'test') -> 'stage_transitions_90d'; ROLLBACK;" % (c, c))
        self.assertEqual(out.split("\n")[-2:], ["lifecycle_stay_totals,lifecycle_trans_daily", "f"])

    def test_erasure_truncate_and_rebuild(self):
        """Account deletion (ON DELETE CASCADE) leaves no stays; portfolio_rebuild recomputes them."""
        c = "%s_gone" % self.p
        du.psql(self.url, "INSERT INTO accounts (client_id, client_name, company_name, tier, lifecycle_stage) "
                          "VALUES ('%s', 'Gone', 'Gone Ltd', 'starter', 'active'); "
                          "INSERT INTO lifecycle_transitions (client_id, from_stage, to_stage, changed_at) "
                          "SELECT '%s', 'onboarding', 'active', now() - k * interval '1 day' FROM generate_series(0, 3) k;" % (c, c))
        self.assertEqual(du.psql(self.url, "SELECT stays || '/' || (days = 3) FROM lifecycle_stay WHERE client_id = '%s'" % c), "3/true")
        self.assertEqual(du.psql(self.url, "SELECT count(*) FROM csmcp.lifecycle_rollups_check()"), "0")
        du.psql(self.url, "DELETE FROM accounts WHERE client_id = '%s'" % c)
        self.assertEqual(du.psql(self.url, "SELECT count(*) FROM lifecycle_stay WHERE client_id = '%s'" % c), "0")
        self.assertEqual(du.psql(self.url, "SELECT count(*) FROM csmcp.lifecycle_rollups_check()"), "0")
        # TRUNCATE empties the three tables (rolled back: the database is shared with other tests)
        out = du.psql(self.url, "BEGIN; TRUNCATE lifecycle_transitions; SELECT (SELECT count(*) FROM lifecycle_stay) + "
                                "(SELECT count(*) FROM lifecycle_stay_totals) + (SELECT count(*) FROM lifecycle_trans_daily); ROLLBACK;")
        self.assertEqual(out.split("\n")[-1], "0")
        du.psql(self.url, "SELECT csmcp.lifecycle_stay_rebuild()")
        self.assertEqual(du.psql(self.url, "SELECT count(*) FROM csmcp.lifecycle_stay_check()"), "0")
        self.assertEqual(du.psql(self.url, "SELECT count(*) FROM csmcp.lifecycle_rollups_check()"), "0")


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
