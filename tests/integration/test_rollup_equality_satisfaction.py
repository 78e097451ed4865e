"""Issue 21 (session 7, helper valuex): monitor_satisfaction's portfolio figures from the per-day
counts nps_daily / csat_daily (migration 0156, kept by triggers on the responses) for the whole UTC
days inside the period and from the responses for its two partial end days
(csmcp.retention_satisfaction) equal the from-scratch SQL (csmcp.retention_satisfaction_scratch).
  * 4 concurrent writers, each a psql session of 60 random statements (autocommit) on nps_responses
    and csat_responses: inserts near UTC midnights, near the ends of the periods asked below
    (now - 90 / 180 days, now) and inside them, score / type / time updates, deletes, multi-row
    inserts;
  * then, for periods of 0 to 400 days ending now or earlier, both functions give the same
    document (one statement: the same now()), and the tool's current and previous periods equal
    the reference over (now - P, now] and (now - 2P, now - P];
  * with the nps_daily insert trigger disabled (rolled back), a response inside the period makes
    the portfolio figures differ from the reference, so the test can fail.
"""
import json
import random

import data_util as du
import lib


class SatisfactionEquality(lib.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.url = lib.database_url()
        cls.p = du.prefix()
        cls.clients = ["%s_%d" % (cls.p, i) for i in range(5)]
        du.psql(cls.url, "".join(
            "INSERT INTO accounts (client_id, client_name, company_name, tier, lifecycle_stage) "
            "VALUES ('%s', 'Sat %d', 'Sat %d Ltd', 'standard', 'active');" % (c, i, i) for i, c in enumerate(cls.clients)))

    @classmethod
    def tearDownClass(cls):
        du.psql(cls.url, "DELETE FROM accounts WHERE client_id LIKE '%s\\_%%'" % cls.p)

    def at(self, rnd):
        """A time near a UTC midnight, near an end of the periods read, or anywhere in 200 days."""
        k = rnd.random()
        if k < 0.35:
            return ("date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' - interval '%d days' + interval '%d minutes'"
                    % (rnd.randrange(0, 200), rnd.randrange(-90, 90)))
        if k < 0.7:
            return "now() - interval '%d days' + interval '%d seconds'" % (rnd.choice([0, 7, 30, 90, 180]), rnd.randrange(-7200, 60))
        return "now() - interval '%d minutes'" % rnd.randrange(0, 200 * 1440)

    def writer(self, seed, errors):
        rnd = random.Random(seed)
        stmts = []
        for k in range(60):
            c = rnd.choice(self.clients)
            op = rnd.random()
            if op < 0.25:
                stmts.append("INSERT INTO nps_responses (response_id, client_id, score, responded_at) VALUES ('%s_w%d_%d', '%s', %d, %s);"
                             % (self.p, seed, k, c, rnd.randrange(0, 11), self.at(rnd)))
            elif op < 0.5:
                t = rnd.choice(["csat", "ces"])
                stmts.append("INSERT INTO csat_responses (response_id, client_id, survey_type, score, responded_at) "
                             "VALUES ('%s_w%d_%d', '%s', '%s', %d, %s);"
                             % (self.p, seed, k, c, t, rnd.randrange(1, 6 if t == "csat" else 8), self.at(rnd)))
            elif op < 0.6:
                stmts.append("UPDATE nps_responses SET score = %d, responded_at = responded_at + interval '%d minutes' "
                             "WHERE response_id = (SELECT min(response_id) FROM nps_responses WHERE client_id = '%s');"
                             % (rnd.randrange(0, 11), rnd.randrange(-1500, 1500), c))
            elif op < 0.7:
                stmts.append("UPDATE csat_responses SET score = %d, survey_type = '%s', responded_at = responded_at + interval '%d minutes' "
                             "WHERE response_id = (SELECT min(response_id) FROM csat_responses WHERE client_id = '%s');"
                             % (rnd.randrange(1, 6), rnd.choice(["csat", "ces"]), rnd.randrange(-1500, 1500), c))
            elif op < 0.8:
                tab = rnd.choice(["nps_responses", "csat_responses"])
                stmts.append("DELETE FROM %s WHERE response_id = (SELECT max(response_id) FROM %s WHERE client_id = '%s');"
                             % (tab, tab, c))
            elif op < 0.9:
                stmts.append("INSERT INTO nps_responses (response_id, client_id, score, responded_at) "
                             "SELECT '%s_m%d_%d_' || g, '%s', g %% 11, %s - g * interval '7 hours' FROM generate_series(0, %d) g;"
                             % (self.p, seed, k, c, self.at(rnd), rnd.randrange(1, 8)))
            else:
                stmts.append("INSERT INTO csat_responses (response_id, client_id, survey_type, score, responded_at) "
                             "SELECT '%s_m%d_%d_' || g, '%s', (ARRAY['csat','ces'])[1 + g %% 2], 1 + g %% 5, %s - g * interval '5 hours' "
                             "FROM generate_series(0, %d) g;" % (self.p, seed, k, c, self.at(rnd), rnd.randrange(1, 8)))
        r = lib.psql_run(self.url, "\n".join(stmts), timeout=300)
        if r.returncode != 0:
            errors.append(r.stderr)

    def check_all(self):
        for frm, to in ((1, 0), (2, 0), (3, 0), (7, 0), (30, 0), (90, 0), (180, 90), (400, 0), (0, 0), (95, 3)):
            for unit in ("days", "hours"):
                got = du.psql(self.url, "SELECT csmcp.retention_satisfaction(NULL, now() - interval '%d %s', now() - interval '%d %s') "
                                        "= csmcp.retention_satisfaction_scratch(NULL, now() - interval '%d %s', now() - interval '%d %s')"
                                        % (frm, unit, to, unit, frm, unit, to, unit))
                self.assertEqual(got, "t", "(now - %d %s, now - %d %s]" % (frm, unit, to, unit))
        for args in ({}, {"survey_type": "csat", "time_period_days": 30}, {"survey_type": "ces", "time_period_days": 1},
                     {"time_period_days": 200}):
            p = args.get("time_period_days", 90)
            out = du.psql(self.url, "BEGIN; SELECT csmcp.tool_monitor_satisfaction('%s', 'test'); "
                                    "SELECT csmcp.retention_satisfaction_scratch(NULL, now() - interval '%d days', now()); "
                                    "SELECT csmcp.retention_satisfaction_scratch(NULL, now() - interval '%d days', now() - interval '%d days'); "
                                    "COMMIT;" % (json.dumps(args), p, 2 * p, p))
            ans, cur, prev = [json.loads(x) for x in out.split("\n") if x.strip().startswith("{")]
            self.assertEqual(ans["current_period"], cur, args)
            self.assertEqual(ans["previous_period"], prev, args)
            self.assertEqual(ans["detractors_total"], cur["detractors"], args)

    def test_concurrent_random_writes_then_answers_equal_scratch(self):
        self.check_all()
        self.assertEqual(du.run_writers(self.writer, [7152 + n for n in range(4)], timeout=300), [])
        self.assertGreater(int(du.psql(self.url, "SELECT count(*) FROM nps_responses WHERE client_id LIKE '%s\\_%%'" % self.p)), 0)
        self.assertGreater(int(du.psql(self.url, "SELECT count(*) FROM csat_responses WHERE client_id LIKE '%s\\_%%'" % self.p)), 0)
        self.assertEqual(du.psql(self.url, "SELECT count(*) FROM csmcp.nps_daily_check()"), "0")
        self.assertEqual(du.psql(self.url, "SELECT count(*) FROM csmcp.csat_daily_check()"), "0")
        self.check_all()

    def test_fails_without_maintenance(self):
        out = du.psql(self.url, "BEGIN; ALTER TABLE nps_responses DISABLE TRIGGER nps_daily_ins; "
                                "ALTER TABLE csat_responses DISABLE TRIGGER csat_daily_ins; "
                                "INSERT INTO nps_responses (response_id, client_id, score, responded_at) "
                                "VALUES ('%s_x', '%s', 10, now() - interval '10 days'); "
                                "SELECT csmcp.retention_satisfaction(NULL, now() - interval '30 days', now()) "
                                "= csmcp.retention_satisfaction_scratch(NULL, now() - interval '30 days', now()); "
                                "INSERT INTO csat_responses (response_id, client_id, survey_type, score, responded_at) "
                                "VALUES ('%s_y', '%s', 'ces', 7, now() - interval '10 days'); "
                                "SELECT (csmcp.retention_satisfaction(NULL, now() - interval '30 days', now()) - 'nps' - 'nps_responses' "
                                "- 'promoters' - 'promoters_pct' - 'passives_pct' - 'detractors_pct') "
                                "= (csmcp.retention_satisfaction_scratch(NULL, now() - interval '30 days', now()) - 'nps' "
                                "- 'nps_responses' - 'promoters' - 'promoters_pct' - 'passives_pct' - 'detractors_pct'); "
                                "ROLLBACK;" % (self.p, self.clients[0], self.p, self.clients[1]))
        self.assertEqual(out.split("\n")[-2:], ["f", "f"], out)
        # and with the triggers, equal
        out = du.psql(self.url, "BEGIN; INSERT INTO nps_responses (response_id, client_id, score, responded_at) "
                                "VALUES ('%s_x', '%s', 10, now() - interval '10 days'); "
                                "SELECT csmcp.retention_satisfaction(NULL, now() - interval '30 days', now()) "
                                "= csmcp.retention_satisfaction_scratch(NULL, now() - interval '30 days', now()); ROLLBACK;"
                      % (self.p, self.clients[0]))
        self.assertEqual(out.split("\n")[-1], "t", out)

