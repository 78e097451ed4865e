"""Issue 21: every rollup-backed figure equals a from-scratch SQL computation after randomized
(seeded, so reproducible) write sequences, including concurrent writers.

Rollup: usage_cum (migration 0140), the running usage totals per account that the usage_decline
retention trigger (automate_retention_campaigns, the monitor's retention rules) reads.
  * 4 concurrent writers, each a psql session running 60 transactions of random INSERT / UPDATE /
    DELETE / multi-row statements on usage_daily of 6 shared fixture accounts (random days in
    the last 130 days: writes land before, inside and between the windows) - a fixed seed per
    writer, so a failure reproduces;
  * then csmcp.usage_cum_check() (every running total against a from-scratch window sum) is
    empty, csmcp.portfolio_check() too, and csmcp.retention_trigger_eval('usage_decline', ...)
    equals the from-scratch query it replaced for several thresholds and windows;
  * the tool automate_retention_campaigns through a real csmcpd lists the same matches.
"""
import random

import data_util as du
import lib

SCRATCH = """
SELECT u.client_id, round((u.prev - u.recent)::numeric * 100 / u.prev, 1),
       jsonb_build_object('active_user_days_recent', u.recent, 'active_user_days_previous', u.prev, 'window_days', {L})
FROM (SELECT d.client_id, coalesce(sum(d.active_users) FILTER (WHERE d.day > csmcp.today() - {L}), 0) AS recent,
             coalesce(sum(d.active_users) FILTER (WHERE d.day <= csmcp.today() - {L}), 0) AS prev
      FROM usage_daily d WHERE d.day > csmcp.today() - 2 * {L} AND d.day <= csmcp.today() GROUP BY d.client_id) u
JOIN accounts a ON a.client_id = u.client_id AND a.lifecycle_stage <> 'churned'
WHERE u.prev > 0 AND (u.prev - u.recent)::numeric * 100 / u.prev >= {T}
"""


class UsageCumEquality(lib.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.url = lib.database_url()
        cls.p = du.prefix()
        cls.clients = ["%s_%d" % (cls.p, i) for i in range(6)]
        du.psql(cls.url, "".join(
            "INSERT INTO accounts (client_id, client_name, company_name, tier, lifecycle_stage) "
            "VALUES ('%s', 'Rollup %d', 'Rollup %d Ltd', 'standard', 'active');" % (c, i, i)
            for i, c in enumerate(cls.clients)))
        # a starting history: 100 days each, declining for half of them
        du.psql(cls.url, "".join(
            "INSERT INTO usage_daily (client_id, day, active_users, events) SELECT '%s', csmcp.today() - k, "
            "greatest(0, %d - (100 - k) * %d / 10), 3 * k FROM generate_series(0, 99) k;" % (c, 40 + i, i % 2 * 3)
            for i, c in enumerate(cls.clients)))

    @classmethod
    def tearDownClass(cls):
        du.psql(cls.url, "DELETE FROM accounts WHERE client_id LIKE '%s\\_%%'" % cls.p)

    def writer(self, seed, errors):
        rnd = random.Random(seed)
        stmts = []
        for _ in range(60):
            c = rnd.choice(self.clients)
            k = rnd.randrange(0, 130)
            op = rnd.random()
            if op < 0.35:
                stmts.append("INSERT INTO usage_daily (client_id, day, active_users, events) VALUES ('%s', csmcp.today() - %d, %d, %d) "
                             "ON CONFLICT (client_id, day) DO UPDATE SET active_users = EXCLUDED.active_users, events = EXCLUDED.events;"
                             % (c, k, rnd.randrange(0, 90), rnd.randrange(0, 500)))
            elif op < 0.6:
                stmts.append("UPDATE usage_daily SET active_users = active_users + %d, events = events + 1 WHERE client_id = '%s' "
                             "AND day BETWEEN csmcp.today() - %d AND csmcp.today() - %d;" % (rnd.randrange(0, 7), c, k, max(0, k - rnd.randrange(0, 20))))
            elif op < 0.8:
                stmts.append("DELETE FROM usage_daily WHERE client_id = '%s' AND day = csmcp.today() - %d;" % (c, k))
            else:   # one statement over several accounts
                a, b = rnd.sample(self.clients, 2)
                stmts.append("INSERT INTO usage_daily (client_id, day, active_users, events) SELECT c, csmcp.today() - %d - g, %d, g "
                             "FROM unnest(ARRAY['%s', '%s']) c, generate_series(0, %d) g "
                             "ON CONFLICT (client_id, day) DO UPDATE SET active_users = EXCLUDED.active_users;"
                             % (k, rnd.randrange(0, 60), a, b, rnd.randrange(0, 15)))
        # each statement its own transaction (psql autocommit), interleaved with the others
        r = lib.psql_run(self.url, "\n".join(stmts), timeout=300)
        if r.returncode != 0:
            errors.append(r.stderr)

    def test_concurrent_random_writes_keep_usage_cum_exact(self):
        self.assertEqual(du.run_writers(self.writer, [21000 + n for n in range(4)], timeout=300), [])
        self.assertEqual(du.psql(self.url, "SELECT count(*) FROM csmcp.usage_cum_check()"), "0")
        self.assertEqual(du.psql(self.url, "SELECT count(*) FROM csmcp.portfolio_check()"), "0")
        matched = 0
        for L, T in ((30, 30), (30, 5), (7, 20), (45, 10), (60, 0.1)):
            got = du.psql(self.url, "SELECT client_id, trigger_value, detail FROM csmcp.retention_trigger_eval('usage_decline', %s, %d) "
                                    "ORDER BY 1" % (T, L))
            want = du.psql(self.url, SCRATCH.format(L=L, T=T) + " ORDER BY 1")
            self.assertEqual(got, want, "usage_decline L=%d T=%s" % (L, T))
            matched += sum(1 for line in got.split("\n") if line.startswith(self.p))
        self.assertGreater(matched, 0, "the fixture accounts matched some windows")

    def test_erasure_and_truncate_paths(self):
        """Account deletion (GDPR erasure cascades to usage_daily) leaves no running totals."""
        c = "%s_gone" % self.p
        du.psql(self.url, "INSERT INTO accounts (client_id, client_name, company_name, tier, lifecycle_stage) "
                          "VALUES ('%s', 'Gone', 'Gone Ltd', 'starter', 'active'); "
                          "INSERT INTO usage_daily (client_id, day, active_users, events) SELECT '%s', csmcp.today() - k, 5, 5 "
                          "FROM generate_series(0, 9) k;" % (c, c))
        self.assertEqual(du.psql(self.url, "SELECT cum_users FROM usage_cum WHERE client_id = '%s' AND day = csmcp.today()" % c), "50")
        du.psql(self.url, "DELETE FROM accounts WHERE client_id = '%s'" % c)
        self.assertEqual(du.psql(self.url, "SELECT count(*) FROM usage_cum WHERE client_id = '%s'" % c), "0")
        self.assertEqual(du.psql(self.url, "SELECT count(*) FROM csmcp.usage_cum_check()"), "0")
