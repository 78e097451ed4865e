"""Issue 21, helper "segments": the segmentation tools store a run's members as one array per
segment (segment_member_sets, migration 0180; segment_members is the view over both stores),
and every answer and every stored membership must equal the previous SQL's
(csmcp.tool_<name>_scratch, one segment_members row per member).

  * fixture: 14 accounts with contracts on both sides of every ARR and health threshold;
  * 4 concurrent psql writers, each 40 random transactions (fixed seed per writer, so a failure
    reproduces): contract values and states, health scores, account states and lifecycle
    stages, new accounts, deletions of accounts, and segmentation runs themselves between them
    (a run and a deletion of one of its accounts race);
  * then no stored member is an account that does not exist, and for many argument sets the tool
    and its scratch reference, called in one REPEATABLE READ snapshot, give the same answer (but
    for the run's ids and timestamp) and store the same members per segment;
  * with the accounts-deletion trigger disabled (rolled back) a deleted account stays a member,
    and the orphan check reports it - so the check can fail.

sup_agent_daily (migration 0181): support tickets per agent, priority and UTC day of each clock,
which analyze_support_performance sums for the whole days of its period (csmcp.sup_tally).
  * 4 concurrent writers x 50 random transactions on support_tickets of fixture accounts and
    agents: new tickets (clocks around UTC midnights, some in the future), first responses,
    resolutions, ratings, reassignment to another agent or none, priority changes, deletions,
    multi-row statements;
  * then csmcp.sup_agent_daily_check() is empty, and sup_perf_metrics / sup_perf_by_agent equal
    their _scratch versions (the tickets themselves) for periods of 1-365 days, agent and
    priority filters, and the tool's answers for those arguments are unchanged;
  * with a trigger disabled (rolled back) one write makes the check report its key.
"""
import json
import random

import data_util as du
import lib

TIER_ARGS = [
    {}, {"vip_identification": False},
    {"tier_definitions": {"strategic": {"min_arr": 150000}, "enterprise": {"min_arr": 90000},
                          "professional": {"min_arr": 40000}, "standard": {"min_arr": 5000}}},
    {"tier_definitions": {"standard": {"min_arr": 0}}},
]
CUSTOMER_ARGS = [
    {"segmentation_type": "value_based"}, {"segmentation_type": "value_based", "min_segment_size": 1},
    {"segmentation_type": "health_based"}, {"segmentation_type": "usage_based", "min_segment_size": 2},
    {"segmentation_type": "industry", "min_segment_size": 1}, {"segmentation_type": "lifecycle"},
    {"segmentation_type": "custom", "criteria": {"min_arr": 20000, "health_min": 50, "name": "Mid"}, "min_segment_size": 1},
    {"segmentation_type": "custom", "criteria": {"tier": "enterprise"}, "min_segment_size": 1},
]
ORPHANS = ("SELECT count(*) FROM segment_members m WHERE NOT EXISTS "
           "(SELECT 1 FROM accounts a WHERE a.client_id = m.client_id)")


def both(url, tool, args):
    """The tool and its scratch reference in one snapshot (rolled back): (answer, members per
    segment name) of each."""
    a = json.dumps(args).replace("'", "''")
    out = du.psql(url, """
BEGIN ISOLATION LEVEL REPEATABLE READ;
CREATE TEMP TABLE seg_cmp (k text, r jsonb);
INSERT INTO seg_cmp SELECT 'new', csmcp.tool_{t}('{a}'::jsonb, 'test');
INSERT INTO seg_cmp SELECT 'old', csmcp.tool_{t}_scratch('{a}'::jsonb, 'test');
SELECT jsonb_object_agg(c.k, jsonb_build_object('answer', c.r, 'members', (
    SELECT coalesce(jsonb_object_agg(s.name, (SELECT jsonb_agg(m.client_id ORDER BY m.client_id) FROM segment_members m
                                              WHERE m.segment_id = s.segment_id)), '{{}}')
    FROM segments s WHERE s.segmentation_id = c.r ->> 'segmentation_id')))
FROM seg_cmp c;
ROLLBACK;""".format(t=tool, a=a))
    got = json.loads(out.strip().split("\n")[-1])
    return got["new"], got["old"]


def strip_ids(answer):
    """An answer without what differs between two runs: the run's id, its segments' ids, the time."""
    answer = dict(answer)
    for k in ("segmentation_id", "execution_timestamp"):
        answer.pop(k, None)
    if "segments" in answer:
        answer["segments"] = [{k: v for k, v in s.items() if k != "segment_id"} for s in answer["segments"]]
    return answer


class SegmentSetsEquality(lib.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.url = lib.database_url()
        cls.p = du.prefix()
        cls.clients = ["%s_%d" % (cls.p, i) for i in range(14)]
        arrs = [0, 9999, 10000, 25000, 49999, 50000, 70000, 99999, 100000, 150000, 199999, 200000, 310000, 5000]
        stmts = []
        for i, c in enumerate(cls.clients):
            stmts.append("INSERT INTO accounts (client_id, client_name, company_name, industry, tier, lifecycle_stage, health_score) "
                         "VALUES ('%s', 'Seg %d', 'Seg %d Ltd', 'Industry %s', '%s', 'active', %d);"
                         % (c, i, i, cls.p, ["starter", "standard", "professional", "enterprise"][i % 4], [45, 59, 60, 75, 80, 85, 95][i % 7]))
            if arrs[i] > 0:
                stmts.append("INSERT INTO contracts (contract_id, client_id, tier, contract_value, licensed_seats, start_date, end_date) "
                             "VALUES ('CTR-%s', '%s', 'standard', %d, %d, csmcp.today() - 100, csmcp.today() + 200);"
                             % (c, c, arrs[i], 5 + i))
        du.psql(cls.url, "".join(stmts))

    @classmethod
    def tearDownClass(cls):
        du.psql(cls.url, "DELETE FROM accounts WHERE client_id LIKE '%s\\_%%'" % cls.p)

    def writer(self, seed, errors):
        rnd = random.Random(seed)
        stmts = []
        for k in range(40):
            c = rnd.choice(self.clients)
            op = rnd.random()
            if op < 0.2:
                stmts.append("UPDATE contracts SET contract_value = %d WHERE client_id = '%s';"
                             % (rnd.choice([0, 9999, 10000, 50000, 99999, 100000, 200000, 300000, 123456]), c))
            elif op < 0.3:
                stmts.append("UPDATE contracts SET status = '%s' WHERE client_id = '%s';" % (rnd.choice(["active", "expired"]), c))
            elif op < 0.45:
                stmts.append("UPDATE accounts SET health_score = %d, status = '%s', lifecycle_stage = '%s' WHERE client_id = '%s';"
                             % (rnd.randrange(0, 101), rnd.choice(["active", "active", "churned"]),
                                rnd.choice(["active", "onboarding", "at_risk", "churned"]), c))
            elif op < 0.6:   # a new account, sometimes deleted again in a later transaction
                n = "%s_w%d_%d" % (self.p, seed, k)
                stmts.append("INSERT INTO accounts (client_id, client_name, company_name, tier, lifecycle_stage, health_score) "
                             "VALUES ('%s', 'W', 'W Ltd', 'standard', 'active', %d);"
                             "INSERT INTO contracts (contract_id, client_id, tier, contract_value, licensed_seats, start_date, end_date) "
                             "VALUES ('CTR-%s', '%s', 'standard', %d, 10, csmcp.today() - 10, csmcp.today() + 300);"
                             % (n, rnd.randrange(0, 101), n, n, rnd.choice([5000, 60000, 250000])))
                if rnd.random() < 0.6:
                    stmts.append("SELECT pg_sleep(0.01); DELETE FROM accounts WHERE client_id = '%s';" % n)
            elif op < 0.8:   # a run, racing the other writers' deletions
                if rnd.random() < 0.5:
                    stmts.append("SELECT length(csmcp.tool_segment_by_value_tier('{}', 'w')::text);")
                else:
                    stmts.append("SELECT length(csmcp.tool_segment_customers('{\"segmentation_type\": \"value_based\", "
                                 "\"min_segment_size\": 1}', 'w')::text);")
            elif seed == 4180:   # a run and a deletion in one transaction (one writer only: two
                # such transactions would each wait for the other's run - a lock upgrade)
                n = "%s_x%d_%d" % (self.p, seed, k)
                stmts.append("BEGIN; INSERT INTO accounts (client_id, client_name, company_name, tier, lifecycle_stage) "
                             "VALUES ('%s', 'X', 'X Ltd', 'standard', 'active');"
                             "SELECT length(csmcp.tool_segment_by_value_tier('{}', 'w')::text);"
                             "DELETE FROM accounts WHERE client_id = '%s'; COMMIT;" % (n, n))
            else:
                stmts.append("UPDATE accounts SET health_score = 100 - health_score WHERE client_id = '%s';" % c)
        r = lib.psql_run(self.url, "\n".join(stmts), timeout=600)
        if r.returncode != 0:
            errors.append(r.stderr)

    def test_concurrent_writes_then_answers_and_members_equal_scratch(self):
        self.assertEqual(du.run_writers(self.writer, [4180 + n for n in range(4)], timeout=600), [])
        self.assertEqual(du.psql(self.url, ORPHANS), "0")
        self.assertGreater(int(du.psql(self.url, "SELECT count(*) FROM segment_member_sets")), 0)
        for args in TIER_ARGS:
            new, old = both(self.url, "segment_by_value_tier", args)
            self.assertEqual(strip_ids(new["answer"]), strip_ids(old["answer"]), args)
            self.assertEqual(new["members"], old["members"], args)
            self.assertGreater(len(new["members"]), 0)
        for args in CUSTOMER_ARGS:
            new, old = both(self.url, "segment_customers", args)
            self.assertEqual(strip_ids(new["answer"]), strip_ids(old["answer"]), args)
            self.assertEqual(new["members"], old["members"], args)

    def test_deletion_leaves_sets_and_check_fails_without_trigger(self):
        c = "%s_del" % self.p
        make = ("INSERT INTO accounts (client_id, client_name, company_name, tier, lifecycle_stage) "
                "VALUES ('%s', 'D', 'D Ltd', 'standard', 'active');"
                "SELECT length(csmcp.tool_segment_customers('{\"segmentation_type\": \"lifecycle\", \"min_segment_size\": 1}', 't')::text);"
                % c)
        member = "SELECT count(*) FROM segment_members WHERE client_id = '%s'" % c
        du.psql(self.url, make)
        self.assertEqual(du.psql(self.url, member), "1")
        # without the trigger (rolled back) the deleted account stays a member: the check sees it
        out = du.psql(self.url, "BEGIN; ALTER TABLE accounts DISABLE TRIGGER segment_sets_accounts_del; "
                                "DELETE FROM accounts WHERE client_id = '%s'; %s; ROLLBACK;" % (c, ORPHANS))
        self.assertNotEqual(out.split("\n")[-1], "0")

        du.psql(self.url, "DELETE FROM accounts WHERE client_id = '%s'" % c)
        self.assertEqual(du.psql(self.url, member), "0")
        self.assertEqual(du.psql(self.url, ORPHANS), "0")
        # many accounts at once (the re-seed path of the trigger)
        ids = ["%s_many%d" % (self.p, i) for i in range(70)]
        du.psql(self.url, "INSERT INTO accounts (client_id, client_name, company_name, tier, lifecycle_stage) "
                          "SELECT x, 'M', 'M Ltd', 'standard', 'active' FROM unnest(ARRAY['%s']) x;"
                          "SELECT length(csmcp.tool_segment_by_value_tier('{}', 't')::text);" % "','".join(ids))
        self.assertEqual(du.psql(self.url, "SELECT count(*) FROM segment_members WHERE client_id LIKE '%s\\_many%%'" % self.p), "70")
        du.psql(self.url, "DELETE FROM accounts WHERE client_id LIKE '%s\\_many%%'" % self.p)
        self.assertEqual(du.psql(self.url, ORPHANS), "0")

    def test_export_lists_set_memberships(self):
        c = self.clients[3]
        du.psql(self.url, "SELECT length(csmcp.tool_segment_customers('{\"segmentation_type\": \"health_based\", "
                          "\"min_segment_size\": 1}', 't')::text)")
        ex = du.psql_json(self.url, "SELECT csmcp.gdpr_export('{\"client_id\": \"%s\"}', 't')" % c)
        n = int(du.psql(self.url, "SELECT count(*) FROM segment_members WHERE client_id = '%s'" % c))
        self.assertGreater(n, 0)
        self.assertEqual(len(ex["tables"]["segment_members"]), n)
        self.assertNotIn("segment_member_rows", ex["tables"])


SUP_ARGS = [(30, None, None), (1, None, None), (7, None, None), (90, None, None), (365, None, None),
            (30, None, "P1"), (30, None, "P3"), (14, "AGENT", None), (60, "AGENT", "P2")]


class SupportAgentDailyEquality(lib.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.url = lib.database_url()
        cls.p = du.prefix()
        cls.clients = ["%s_%d" % (cls.p, i) for i in range(4)]
        cls.agents = ["%s_ag%d" % (cls.p, i) for i in range(5)]
        du.psql(cls.url, "".join(
            "INSERT INTO accounts (client_id, client_name, company_name, tier, lifecycle_stage) "
            "VALUES ('%s', 'Sup %d', 'Sup %d Ltd', 'standard', 'active');" % (c, i, i) for i, c in enumerate(cls.clients)) + "".join(
            "INSERT INTO support_agents (agent_id, name, email, team) VALUES ('%s', 'Agent %d', '%s@example.test', 'team_%s');"
            % (a, i, a, cls.p) for i, a in enumerate(cls.agents)))

    @classmethod
    def tearDownClass(cls):
        du.psql(cls.url, "DELETE FROM accounts WHERE client_id LIKE '%s\\_%%'; DELETE FROM support_agents WHERE agent_id LIKE '%s\\_%%'"
                % (cls.p, cls.p))

    def at(self, rnd):
        # one in three: a time near now - N days, +-90 minutes (the partial hours of the periods'
        # first and last hours, sup_prio_hourly of migration 0203)
        if rnd.random() < 1 / 3:
            return ("now() - interval '%d days' + interval '%d minutes'"
                    % (rnd.choice([0, 1, 7, 14, 21, 28, 30, 60, 90]), rnd.randrange(-90, 90)))
        # else a time near a UTC midnight of the last 400 days (or up to 2 days ahead), +-90 minutes
        return ("date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' - interval '%d days' + interval '%d minutes'"
                % (rnd.choice([0, 0, 1, 2, 6, 7, 8, 13, 14, 29, 30, 31, 59, 60, 89, 90, 200, 364, 365, 400, -1, -2]),
                   rnd.randrange(-90, 90)))

    def writer(self, seed, errors):
        rnd = random.Random(seed)
        stmts = []
        for k in range(50):
            c = rnd.choice(self.clients)
            ag = rnd.choice(self.agents + ["NULL"])
            ag = ag if ag == "NULL" else "'%s'" % ag
            op = rnd.random()
            tk = "(SELECT ticket_id FROM support_tickets WHERE client_id = '%s' ORDER BY ticket_id %s LIMIT 1)" % (
                c, rnd.choice(["", "DESC"]))
            if op < 0.3:
                stmts.append("INSERT INTO support_tickets (ticket_id, client_id, subject, description, priority, requester_email, "
                             "requester_name, assigned_agent, sla_first_response_minutes, sla_resolution_minutes, created_at, "
                             "first_response_at, resolved_at, rated_at, satisfaction_rating, escalated) "
                             "SELECT 'TKT-9%d%03d', '%s', 's', 'd', '%s', 'r@example.test', 'R', %s, %d, %d, c, "
                             "c + interval '%d minutes', CASE WHEN %d > 0 THEN c + interval '%d minutes' END, "
                             "CASE WHEN %d > 0 THEN c + interval '%d minutes' END, %s, %s FROM (SELECT %s AS c) x;"
                             % (seed, k, c, rnd.choice(["P0", "P1", "P2", "P3", "P4"]), ag, rnd.choice([30, 60, 240]),
                                rnd.choice([240, 1440]), rnd.randrange(1, 400), rnd.randrange(2), rnd.randrange(60, 3000),
                                rnd.randrange(2), rnd.randrange(60, 4000), rnd.choice(["NULL", "1", "2", "3", "4", "5"]),
                                rnd.choice(["true", "false"]), self.at(rnd)))
            elif op < 0.45:
                stmts.append("UPDATE support_tickets SET first_response_at = created_at + interval '%d minutes', "
                             "resolved_at = created_at + interval '%d minutes', status = 'resolved' WHERE ticket_id = %s;"
                             % (rnd.randrange(0, 300), rnd.randrange(300, 5000), tk))
            elif op < 0.55:
                stmts.append("UPDATE support_tickets SET satisfaction_rating = %s, rated_at = %s WHERE ticket_id = %s;"
                             % (rnd.choice(["NULL", "1", "2", "5"]), rnd.choice(["NULL", "now()", self.at(rnd)]), tk))
            elif op < 0.7:
                stmts.append("UPDATE support_tickets SET assigned_agent = %s, priority = '%s', escalated = NOT escalated "
                             "WHERE ticket_id = %s;" % (ag, rnd.choice(["P0", "P2", "P4"]), tk))
            elif op < 0.8:
                stmts.append("DELETE FROM support_tickets WHERE ticket_id = %s;" % tk)
            elif op < 0.9:   # several rows, several keys, one statement
                h = rnd.randrange(0, 30)
                stmts.append("UPDATE support_tickets SET created_at = created_at - interval '%d hours', "
                             "first_response_at = first_response_at - interval '%d hours' WHERE client_id = '%s' "
                             "AND ticket_id LIKE 'TKT-9%%';" % (h, h, c))
            else:   # an update of no counted column: no rollup write
                stmts.append("UPDATE support_tickets SET subject = 'x%d' WHERE client_id = '%s';" % (k, c))
        r = lib.psql_run(self.url, "\n".join(stmts), timeout=300)
        if r.returncode != 0:
            errors.append(r.stderr)

    def test_concurrent_random_writes_keep_sup_agent_daily_exact(self):
        self.assertEqual(du.run_writers(self.writer, [n for n in range(1, 5)], timeout=300), [])
        self.assertGreater(int(du.psql(self.url, "SELECT count(*) FROM support_tickets WHERE client_id LIKE '%s\\_%%'" % self.p)), 10)
        self.assertEqual(du.psql(self.url, "SELECT count(*) FROM csmcp.sup_agent_daily_check()"), "0")
        for days, agent, prio in SUP_ARGS:
            a = "'%s'" % self.agents[0] if agent else "NULL"
            pr = "'%s'" % prio if prio else "NULL"
            for fn in ("sup_perf_metrics", "sup_perf_by_agent"):
                q = ("SELECT %s FROM csmcp.{f}(now() - interval '%d days', now(), NULL, NULL, %s, %s) x"
                     % ("to_jsonb(x)" if fn == "sup_perf_metrics" else "coalesce(jsonb_agg(x ORDER BY x.agent_id), '[]')", days, a, pr))
                # one snapshot and one now() for both
                got = du.psql(self.url, "BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT (%s) = (%s), (%s); ROLLBACK;" % (
                    q.format(f=fn), q.format(f=fn + "_scratch"), q.format(f=fn)))
                self.assertTrue(got.split("\n")[-1].startswith("t|"), (fn, days, agent, prio, got[-400:]))
        # the tool for those arguments: its rollup and scratch paths give the same answer
        for days, agent, prio in SUP_ARGS:
            args = {"period_days": days}
            if agent:
                args["agent_filter"] = self.agents[0]
            if prio:
                args["priority_filter"] = prio
            for t in ("overview", "sla", "agent"):
                args["analysis_type"] = t
                j = json.dumps(args)
                same = du.psql(self.url, """
BEGIN ISOLATION LEVEL REPEATABLE READ;
CREATE TEMP TABLE sup_cmp AS SELECT csmcp.tool_analyze_support_performance('%s', 't') AS r;
ALTER FUNCTION csmcp.sup_perf_metrics(timestamptz, timestamptz, text, text, text, text) RENAME TO sup_perf_metrics_fast;
ALTER FUNCTION csmcp.sup_perf_metrics_scratch(timestamptz, timestamptz, text, text, text, text) RENAME TO sup_perf_metrics;
ALTER FUNCTION csmcp.sup_perf_by_agent(timestamptz, timestamptz, text, text, text, text) RENAME TO sup_perf_by_agent_fast;
ALTER FUNCTION csmcp.sup_perf_by_agent_scratch(timestamptz, timestamptz, text, text, text, text) RENAME TO sup_perf_by_agent;
SELECT (r - 'generated_at') = (csmcp.tool_analyze_support_performance('%s', 't') - 'generated_at') FROM sup_cmp;
ROLLBACK;""" % (j, j))
                self.assertEqual(same.split("\n")[-1], "t", args)

    def test_check_fails_without_maintenance(self):
        c = self.clients[0]
        out = du.psql(self.url, "BEGIN; ALTER TABLE support_tickets DISABLE TRIGGER sup_agent_daily_ins; "
                                "INSERT INTO support_tickets (ticket_id, client_id, subject, description, requester_email, "
                                "requester_name, sla_first_response_minutes, sla_resolution_minutes) "
                                "VALUES ('TKT-98888', '%s', 's', 'd', 'r@example.test', 'R', 60, 600); "
                                "SELECT count(*) FROM csmcp.sup_agent_daily_check(); ROLLBACK;" % c)
        self.assertNotEqual(out.split("\n")[-1], "0")


    def test_hourly_rows_are_checked_and_read(self):
        # one whole hour of the last 30 days wrong in sup_prio_hourly (0203): the check reports it
        # and the whole team's 30-day figures (read from those hours) differ from the scratch's
        c = self.clients[1]
        out = du.psql(self.url, "BEGIN; INSERT INTO support_tickets (ticket_id, client_id, subject, description, requester_email, "
                                "requester_name, sla_first_response_minutes, sla_resolution_minutes, created_at) "
                                "VALUES ('TKT-98887', '%s', 's', 'd', 'r@example.test', 'R', 60, 600, now() - interval '3 days'); "
                                "UPDATE sup_prio_hourly SET created = created + 1 WHERE day + make_interval(hours => hr) = "
                                "date_trunc('hour', (now() - interval '3 days') AT TIME ZONE 'UTC') AND priority = 'P3'; "
                                "SELECT count(*) FROM csmcp.sup_agent_daily_check(); "
                                "SELECT (SELECT to_jsonb(x) FROM csmcp.sup_perf_metrics(now() - interval '30 days', now(), NULL, NULL, NULL, NULL) x) "
                                "= (SELECT to_jsonb(x) FROM csmcp.sup_perf_metrics_scratch(now() - interval '30 days', now(), NULL, NULL, NULL, NULL) x); "
                                "ROLLBACK;" % c)
        lines = out.split("\n")
        self.assertEqual(lines[-2], "1", out)
        self.assertEqual(lines[-1], "f", out)

if __name__ == "__main__":
    lib.main()
