"""Issue 21: the usage analytics (track_feature_adoption, analyze_engagement_patterns,
track_adoption_milestones) answer from rollups kept by triggers in the writing transaction;
every answer must equal the from-scratch computation (csmcp.<tool>_scratch: the tool's SQL
before the rollups) after randomized write sequences, including concurrent writers.

  * fixture: 8 accounts (two churned), 3 features (one core, one integration, one advanced)
    with 40 days of usage each on top of whatever the database holds (the seeded demo);
  * 4 concurrent psql writers, each 70 random transactions (fixed seed per writer, so a
    failure reproduces) of INSERT / upsert / UPDATE / DELETE / multi-account statements on
    usage_feature_daily and usage_daily (some moving rows 1000 days back), on days from 400 days ago to 3 days ahead (rows after
    "today" exercise the later-last-day path);
  * then the rollups' own checks are empty and every tool answer equals its from-scratch
    computation for a set of arguments (periods 1-365 days, one account, one feature,
    thresholds);
  * a missed write is detected: with the trigger disabled (rolled back) one insert makes the
    check and the comparison fail - so the comparison can fail.
"""
import json
import random
import threading

import data_util as du
import lib

FEATURE_ARGS = [
    {}, {"time_period_days": 1}, {"time_period_days": 7}, {"time_period_days": 30, "adoption_threshold": 0.05},
    {"time_period_days": 365}, {"time_period_days": 120, "adoption_threshold": 0.9},
]


class EngageRollupEquality(lib.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.url = lib.database_url()
        cls.p = du.prefix()
        cls.clients = ["%s_%d" % (cls.p, i) for i in range(8)]
        cls.features = ["%s_core" % cls.p, "%s_intg" % cls.p, "%s_adv" % cls.p]
        sql = ["INSERT INTO features (feature_id, name, category, is_core) VALUES "
               "('%s', 'Core %s', 'core', true), ('%s', 'Intg', 'integration', false), ('%s', 'Adv', 'advanced', false);"
               % (cls.features[0], cls.p, cls.features[1], cls.features[2])]
        for i, c in enumerate(cls.clients):
            sql.append("INSERT INTO accounts (client_id, client_name, company_name, tier, lifecycle_stage, status) "
                       "VALUES ('%s', 'Engage %d', 'Engage %d Ltd', 'standard', 'active', '%s');"
                       % (c, i, i, "churned" if i >= 6 else "active"))
            sql.append("INSERT INTO usage_daily (client_id, day, active_users, events) SELECT '%s', csmcp.today() - k, "
                       "greatest(0, %d - k / 4), 5 * k FROM generate_series(0, 39) k;" % (c, 20 + 3 * i))
            sql.append("INSERT INTO usage_feature_daily (client_id, day, feature_id, events, users) "
                       "SELECT '%s', csmcp.today() - k, f, k + %d, 1 + k %% 5 FROM generate_series(0, 39, %d) k, "
                       "unnest(ARRAY['%s', '%s', '%s']) f;" % (c, i, 1 + i % 3, *cls.features))
        du.psql(cls.url, "\n".join(sql))

    @classmethod
    def tearDownClass(cls):
        du.psql(cls.url, "DELETE FROM accounts WHERE client_id LIKE '%s\\_%%'; DELETE FROM features WHERE feature_id LIKE '%s\\_%%'"
                % (cls.p, cls.p))

    # ------------------------------------------------------------------ helpers

    def assert_same(self, tool, args):
        a = json.dumps(args).replace("'", "''")
        got = du.psql(self.url, "SELECT csmcp.tool_%s('%s', 'test')" % (tool, a))
        want = du.psql(self.url, "SELECT csmcp.%s_scratch('%s', 'test')" % (tool, a))
        self.assertEqual(json.loads(got), json.loads(want), "%s(%s): rollup answer differs from the from-scratch one" % (tool, a))

    def assert_all_same(self):
        for args in FEATURE_ARGS:
            self.assert_same("track_feature_adoption", args)
        for c in self.clients[:3]:
            self.assert_same("track_feature_adoption", {"client_id": c, "time_period_days": 60})
        for f in self.features:
            self.assert_same("track_feature_adoption", {"feature_id": f, "time_period_days": 30})

    def checks(self):
        return du.psql(self.url, "SELECT count(*) FROM csmcp.usage_feature_agg_check()")

    def writer(self, seed, errors):
        rnd = random.Random(seed)
        stmts = []
        for _ in range(70):
            c = rnd.choice(self.clients)
            f = rnd.choice(self.features)
            k = rnd.randrange(-3, 400)
            op = rnd.random()
            if op < 0.3:
                stmts.append("INSERT INTO usage_feature_daily (client_id, day, feature_id, events, users) VALUES "
                             "('%s', csmcp.today() - %d, '%s', %d, %d) ON CONFLICT (client_id, day, feature_id) DO UPDATE "
                             "SET events = usage_feature_daily.events + EXCLUDED.events, users = EXCLUDED.users;"
                             % (c, k, f, rnd.randrange(0, 50), rnd.randrange(0, 9)))
            elif op < 0.45:
                stmts.append("UPDATE usage_feature_daily SET users = users + %d, events = events + 1 WHERE client_id = '%s' "
                             "AND day BETWEEN csmcp.today() - %d AND csmcp.today() - %d;" % (rnd.randrange(0, 4), c, k, k - rnd.randrange(0, 30)))
            elif op < 0.6:
                stmts.append("DELETE FROM usage_feature_daily WHERE client_id = '%s' AND feature_id = '%s' "
                             "AND day >= csmcp.today() - %d;" % (c, f, rnd.randrange(0, 12) if rnd.random() < 0.5 else k))
            elif op < 0.7:   # moves rows to another day (UPDATE of the key)
                stmts.append("UPDATE usage_feature_daily u SET day = day - 1000 WHERE client_id = '%s' AND feature_id = '%s' "
                             "AND day = csmcp.today() - %d AND NOT EXISTS (SELECT 1 FROM usage_feature_daily x WHERE "
                             "x.client_id = u.client_id AND x.feature_id = u.feature_id AND x.day = u.day - 1000);" % (c, f, k))
            elif op < 0.85:   # several accounts and features in one statement
                a, b = rnd.sample(self.clients, 2)
                stmts.append("INSERT INTO usage_feature_daily (client_id, day, feature_id, events, users) "
                             "SELECT c, csmcp.today() - %d - g, f, g, 2 FROM unnest(ARRAY['%s', '%s']) c, generate_series(0, %d) g, "
                             "unnest(ARRAY['%s', '%s']) f ON CONFLICT (client_id, day, feature_id) DO UPDATE SET users = EXCLUDED.users;"
                             % (max(k, 0), a, b, rnd.randrange(0, 15), *rnd.sample(self.features, 2)))
            else:
                stmts.append("INSERT INTO usage_daily (client_id, day, active_users, events) VALUES ('%s', csmcp.today() - %d, %d, %d) "
                             "ON CONFLICT (client_id, day) DO UPDATE SET active_users = EXCLUDED.active_users, events = EXCLUDED.events;"
                             % (c, max(k, 0), rnd.randrange(0, 90), rnd.randrange(0, 500)))
            if rnd.random() < 0.2:   # a multi-statement transaction
                stmts[-1] = "BEGIN; %s %s COMMIT;" % (stmts[-1], stmts[-1].replace("csmcp.today() - ", "csmcp.today() - 1 - "))
        r = lib.psql_run(self.url, "\n".join(stmts), timeout=300)
        if r.returncode != 0:
            errors.append(r.stderr)

    # ------------------------------------------------------------------ tests

    def test_1_concurrent_random_writes_keep_answers_exact(self):
        self.assertEqual(self.checks(), "0")
        self.assert_all_same()
        errors = []
        threads = [threading.Thread(target=self.writer, args=(2100 + n, errors)) for n in range(4)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(timeout=300)
        self.assertEqual(errors, [])
        self.assertEqual(self.checks(), "0")
        self.assertEqual(du.psql(self.url, "SELECT count(*) FROM csmcp.portfolio_check()"), "0")
        self.assert_all_same()

    def test_2_missed_write_is_detected(self):
        """The comparison can fail: a write the trigger did not see shows up in both the check
        and the tool comparison (everything rolled back)."""
        c, f = "%s_missed" % self.p, self.features[0]
        out = du.psql(self.url, (
            "BEGIN;"
            "INSERT INTO accounts (client_id, client_name, company_name, tier, lifecycle_stage) "
            "VALUES ('%s', 'Missed', 'Missed Ltd', 'standard', 'active');"
            "ALTER TABLE usage_feature_daily DISABLE TRIGGER usage_feature_agg_ins;"
            "INSERT INTO usage_feature_daily (client_id, day, feature_id, events, users) VALUES ('%s', csmcp.today() - 2, '%s', 7000, 3);"
            "SELECT (SELECT count(*) FROM csmcp.usage_feature_agg_check()) > 0, "
            "csmcp.tool_track_feature_adoption('{}', 'test') = csmcp.track_feature_adoption_scratch('{}', 'test');"
            "ROLLBACK;") % (c, c, f))
        self.assertEqual(out.splitlines()[-1], "t|f")
        self.assertEqual(self.checks(), "0")

    def test_3_account_deletion_and_rebuild(self):
        c = self.clients[7]
        du.psql(self.url, "DELETE FROM accounts WHERE client_id = '%s'" % c)
        self.assertEqual(du.psql(self.url, "SELECT count(*) FROM usage_feature_pair WHERE client_id = '%s'" % c), "0")
        self.assertEqual(self.checks(), "0")
        self.assert_all_same()
        # the bulk path: a rebuild gives the same tables (checked) and answers
        du.psql(self.url, "SELECT csmcp.usage_feature_agg_rebuild()")
        self.assertEqual(self.checks(), "0")
        self.assert_same("track_feature_adoption", {})
