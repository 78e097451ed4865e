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
  * a missed write is detected: with a trigger disabled (rolled back) one write makes the check
    and the comparison fail, for each of the three rollups - so the comparison can fail;
  * account deletion, the rebuilds and a change of the feature catalogue keep them exact.

Migrations 0146-0148 (helper engage2): the writers also insert / move / delete communications
and support tickets (occurred / created from 400 days ago to 3 days ahead, so rows cross the
cut's own UTC day), contracts, completed executive reviews, advocates, manual milestones and
account creation days; the analyses of all accounts are called before the writers start, so the
day tables of four periods (engage_window) exist and are maintained by the writers, while a
fifth period is computed without one. Checks: engage_contacts_check, engage_window_check,
adoption_account_check; a missed write of each new trigger makes the comparison fail.
"""
import json
import random

import data_util as du
import lib

ENGAGE_ARGS = [
    {}, {"lookback_period_days": 7}, {"lookback_period_days": 365}, {"lookback_period_days": 31, "anomaly_detection": False},
    {"lookback_period_days": 60, "pattern_types": ["temporal", "feature_usage"]},
    {"analysis_scope": "segment", "scope_filter": {"tier": "standard"}},
    {"analysis_scope": "segment", "scope_filter": {"health_min": 40, "health_max": 90}, "lookback_period_days": 45},
]
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
        for i, c in enumerate(cls.clients[:4]):
            sql.append("INSERT INTO contracts (contract_id, client_id, tier, contract_value, licensed_seats, start_date, end_date) "
                       "VALUES ('%s_k', '%s', 'standard', 1000, %d, csmcp.today() - %d, csmcp.today() + 300);" % (c, c, 20 + 30 * i, 50 + 40 * i))
            sql.append("INSERT INTO feature_adoption (client_id, feature_id, first_used_on) SELECT '%s', f, csmcp.today() - 30 - (%d * o)::int "
                       "FROM unnest(ARRAY['%s', '%s', '%s']) WITH ORDINALITY x(f, o);" % (c, i, *cls.features))
        for i, c in enumerate(cls.clients):
            sql.append("INSERT INTO communications (client_id, channel, direction, occurred_at) SELECT '%s', "
                       "(ARRAY['email', 'call', 'slack'])[1 + k %% 3], (ARRAY['inbound', 'outbound'])[1 + k %% 2], "
                       "now() - make_interval(days => 12 * k + %d, hours => k) FROM generate_series(0, 9) k;" % (c, i))
            sql.append("INSERT INTO support_tickets (ticket_id, client_id, subject, description, priority, category, requester_email, "
                       "requester_name, sla_first_response_minutes, sla_resolution_minutes, created_at) SELECT "
                       "'TKT-88%02d' || lpad(k::text, 4, '0'), '%s', 's', 'd', (ARRAY['P0', 'P2', 'P3'])[1 + k %% 3], "
                       "(ARRAY['bug_report', 'how_to_question'])[1 + k %% 2], 'r@example.com', 'R', 60, 600, "
                       "now() - make_interval(days => 20 * k + %d, hours => 2 * k) FROM generate_series(0, %d) k;" % (i, c, i, 2 + i))
        sql.append("INSERT INTO adoption_milestones (client_id, milestone, achieved_on) VALUES ('%s', 'm7', csmcp.today() - 20), "
                   "('%s', 'm3', csmcp.today() - 200);" % (cls.clients[0], cls.clients[1]))
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

    def cases(self):
        out = [("track_feature_adoption", a) for a in FEATURE_ARGS]
        out += [("track_feature_adoption", {"client_id": c, "time_period_days": 60}) for c in self.clients[:3]]
        out += [("track_feature_adoption", {"feature_id": f, "time_period_days": 30}) for f in self.features]
        out += [("analyze_engagement_patterns", a) for a in ENGAGE_ARGS]
        out += [("analyze_engagement_patterns", {"analysis_scope": "individual", "scope_filter": {"client_id": c},
                                                 "lookback_period_days": days})
                for c in self.clients[:6] for days in (14, 90, 200)]
        out += [("track_adoption_milestones", {})]
        out += [("track_adoption_milestones", {"client_id": c}) for c in self.clients[:5]]
        return out

    def assert_all_same(self):
        """Every case in one psql call (one row per case: equal or not), then the details of
        the first differing one."""
        cases = self.cases()
        sql = "SELECT string_agg(CASE WHEN csmcp.tool_%s(a, 'test') = csmcp.%s_scratch(a, 'test') THEN 't' ELSE 'f' END, '' ORDER BY i) FROM (VALUES %s) v(i, a)"
        by_tool = {}
        for i, (tool, args) in enumerate(cases):
            by_tool.setdefault(tool, []).append((i, args))
        for tool, lst in by_tool.items():
            vals = ", ".join("(%d, '%s'::jsonb)" % (i, json.dumps(a).replace("'", "''")) for i, a in lst)
            res = du.psql(self.url, sql % (tool, tool, vals))
            for (i, args), ok in zip(lst, res):
                if ok != "t":
                    self.assert_same(tool, args)   # fails with both answers
                    self.fail("%s(%s) differs" % (tool, args))

    def checks(self):
        return du.psql(self.url, "SELECT (SELECT count(*) FROM csmcp.usage_feature_agg_check()) "
                                 "+ (SELECT count(*) FROM csmcp.usage_moments_check()) "
                                 "+ (SELECT count(*) FROM csmcp.adoption_derived_check()) "
                                 "+ (SELECT count(*) FROM csmcp.engage_contacts_check()) "
                                 "+ (SELECT count(*) FROM csmcp.engage_window_check()) "
                                 "+ (SELECT count(*) FROM csmcp.adoption_account_check())")

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
            elif op < 0.92:
                stmts.append("INSERT INTO usage_daily (client_id, day, active_users, events) VALUES ('%s', csmcp.today() - %d, %d, %d) "
                             "ON CONFLICT (client_id, day) DO UPDATE SET active_users = EXCLUDED.active_users, events = EXCLUDED.events;"
                             % (c, max(k, 0) % 120, rnd.choice((0, 1, 200, rnd.randrange(0, 90))), rnd.randrange(0, 500)))
            elif op < 0.96:
                stmts.append("DELETE FROM usage_daily WHERE client_id = '%s' AND day BETWEEN csmcp.today() - %d AND csmcp.today() - %d;"
                             % (c, k % 120, k % 120 - rnd.randrange(0, 3)))
            elif op < 0.975:   # churn or revive an account (the all-accounts view leaves churned accounts out)
                stmts.append("UPDATE accounts SET status = '%s' WHERE client_id = '%s';" % (rnd.choice(("churned", "active")), c))
            elif op < 0.99:   # first uses (m2, m4..m6)
                if rnd.random() < 0.3:
                    stmts.append("DELETE FROM feature_adoption WHERE client_id = '%s' AND feature_id = '%s';" % (c, f))
                else:
                    stmts.append("INSERT INTO feature_adoption (client_id, feature_id, first_used_on) VALUES ('%s', '%s', csmcp.today() - %d) "
                                 "ON CONFLICT (client_id, feature_id) DO UPDATE SET first_used_on = EXCLUDED.first_used_on;"
                                 % (c, f, rnd.randrange(0, 200)))
            else:   # the seats behind m3's threshold
                stmts.append("UPDATE contracts SET licensed_seats = %d WHERE client_id = '%s';" % (rnd.randrange(1, 150), c))
            if rnd.random() < 0.2:   # a multi-statement transaction
                stmts[-1] = "BEGIN; %s %s COMMIT;" % (stmts[-1], stmts[-1].replace("csmcp.today() - ", "csmcp.today() - 1 - "))
        for i in range(40):   # communications, tickets and the milestones' other sources (0146-0148)
            stmts.append(self.other_write(rnd, seed, 100 + i, rnd.choice(self.clients)))
        rnd.shuffle(stmts)
        r = lib.psql_run(self.url, "\n".join(stmts), timeout=300)
        if r.returncode != 0:
            errors.append(r.stderr)

    def other_write(self, rnd, seed, i, c):
        """One random write of the tables behind 0146-0148 (communications, tickets, contracts,
        executive reviews, advocates, manual milestones, account creation days)."""
        k = rnd.randrange(-3, 400)
        op = rnd.random()
        if op < 0.2:
            return ("INSERT INTO communications (client_id, channel, direction, occurred_at) VALUES ('%s', '%s', '%s', "
                    "now() - make_interval(days => %d, mins => %d));" % (c, rnd.choice(("email", "call", "sms")),
                                                                       rnd.choice(("inbound", "outbound")), k, rnd.randrange(0, 1440)))
        if op < 0.3:   # moves a contact in time or to another channel / account
            return ("UPDATE communications SET occurred_at = occurred_at + make_interval(days => %d), channel = '%s', client_id = '%s' "
                    "WHERE communication_id = (SELECT max(communication_id) FROM communications WHERE client_id = '%s');"
                    % (rnd.randrange(-200, 100), rnd.choice(("email", "meeting")), rnd.choice(self.clients), c))
        if op < 0.36:
            return ("DELETE FROM communications WHERE communication_id = (SELECT min(communication_id) FROM communications "
                    "WHERE client_id = '%s' AND occurred_at > now() - make_interval(days => %d));" % (c, k))
        if op < 0.52:
            return ("INSERT INTO support_tickets (ticket_id, client_id, subject, description, priority, category, requester_email, "
                    "requester_name, sla_first_response_minutes, sla_resolution_minutes, created_at) VALUES ('TKT-77%04d%04d', '%s', "
                    "'s', 'd', '%s', '%s', 'r@example.com', 'R', 60, 600, now() - make_interval(days => %d, mins => %d));"
                    % (seed % 10000, i, c, rnd.choice(("P0", "P1", "P3")), rnd.choice(("bug_report", "data_issue")), k,
                       rnd.randrange(0, 1440)))
        if op < 0.62:   # priority / category / creation / status / account of a ticket
            return ("UPDATE support_tickets SET priority = '%s', category = '%s', status = 'in_progress', client_id = '%s', "
                    "created_at = created_at - make_interval(days => %d) WHERE ticket_id = (SELECT max(ticket_id) FROM support_tickets "
                    "WHERE client_id = '%s');" % (rnd.choice(("P1", "P4")), rnd.choice(("bug_report", "training_request")),
                                                  rnd.choice(self.clients), rnd.randrange(0, 60), c))
        if op < 0.68:
            return ("DELETE FROM support_tickets WHERE ticket_id = (SELECT min(ticket_id) FROM support_tickets WHERE client_id = '%s');" % c)
        if op < 0.74:   # a contract: an earlier start, a new active one, or none active
            return rnd.choice((
                "UPDATE contracts SET start_date = start_date - %d WHERE client_id = '%s';" % (rnd.randrange(1, 90), c),
                "UPDATE contracts SET status = 'expired' WHERE client_id = '%s' AND status = 'active';" % c,
                "INSERT INTO contracts (contract_id, client_id, tier, contract_value, licensed_seats, start_date, end_date) VALUES "
                "('%s_k%d_%d', '%s', 'standard', 500, %d, csmcp.today() - %d, csmcp.today() + 30) ON CONFLICT DO NOTHING;"
                % (c, seed, i, c, rnd.randrange(1, 200), rnd.randrange(0, 500))))
        if op < 0.82:
            return rnd.choice((
                "INSERT INTO executive_reviews (ebr_id, client_id, ebr_type, scheduled_at, status, completed_at) VALUES "
                "('EBR-e2-%d-%d', '%s', 'quarterly', now() - make_interval(days => %d), 'completed', now() - make_interval(days => %d));"
                % (seed, i, c, k, max(k, 0)),
                "UPDATE executive_reviews SET status = 'cancelled' WHERE ebr_id = (SELECT min(ebr_id) FROM executive_reviews "
                "WHERE client_id = '%s' AND status = 'completed');" % c))
        if op < 0.9:
            return rnd.choice((
                "INSERT INTO advocates (advocate_id, client_id, contact_name, contact_email, enrolled_at) VALUES "
                "('ADV-e2-%d-%d', '%s', 'A', 'a%d_%d@example.com', now() - make_interval(days => %d));" % (seed, i, c, seed, i, k),
                "DELETE FROM advocates WHERE advocate_id = (SELECT min(advocate_id) FROM advocates WHERE client_id = '%s');" % c))
        if op < 0.97:
            return rnd.choice((
                "INSERT INTO adoption_milestones (client_id, milestone, achieved_on) VALUES ('%s', 'm%d', csmcp.today() - %d) "
                "ON CONFLICT (client_id, milestone) DO UPDATE SET achieved_on = EXCLUDED.achieved_on;" % (c, rnd.randrange(1, 9), k),
                "DELETE FROM adoption_milestones WHERE client_id = '%s' AND milestone = 'm%d';" % (c, rnd.randrange(1, 9))))
        return "UPDATE accounts SET created_at = now() - make_interval(days => %d) WHERE client_id = '%s';" % (rnd.randrange(0, 400), c)

    # ------------------------------------------------------------------ tests

    def test_1_concurrent_random_writes_keep_answers_exact(self):
        self.assertEqual(self.checks(), "0")
        # the day tables of today are the four all-accounts periods called first (ENGAGE_ARGS),
        # not whatever an earlier module (or a monitor's prefill) left: 60 is the fifth
        du.psql(self.url, "SELECT csmcp.engage_window_clear()")
        self.assert_all_same()
        self.assertEqual(du.psql(self.url, "SELECT string_agg(v_days::text, ',' ORDER BY v_days) FROM engage_window_key "
                                           "WHERE t = csmcp.today()"), "7,31,90,365")
        self.assertEqual(du.run_writers(self.writer, [2100 + n for n in range(4)], timeout=300), [])
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
        c = self.clients[2]
        out = du.psql(self.url, (
            "BEGIN;"
            "ALTER TABLE usage_daily DISABLE TRIGGER usage_moments_upd;"
            "UPDATE usage_daily SET active_users = active_users + 500 WHERE client_id = '%s' AND day = csmcp.today() - 3;"
            "SELECT (SELECT count(*) FROM csmcp.usage_moments_check()) > 0, "
            "csmcp.tool_analyze_engagement_patterns('{\"analysis_scope\": \"individual\", \"scope_filter\": {\"client_id\": \"%s\"}}', 'test') "
            "= csmcp.analyze_engagement_patterns_scratch('{\"analysis_scope\": \"individual\", \"scope_filter\": {\"client_id\": \"%s\"}}', 'test');"
            "ROLLBACK;") % (c, c, c))
        self.assertEqual(out.splitlines()[-1], "t|f")
        out = du.psql(self.url, (
            "BEGIN;"
            "UPDATE accounts SET status = 'active' WHERE client_id = '%s';"   # (the writers may have churned it)
            "DELETE FROM feature_adoption WHERE client_id = '%s';"   # (maintained: the first uses below are new)
            "ALTER TABLE feature_adoption DISABLE TRIGGER adoption_derived_ins;"
            "INSERT INTO feature_adoption (client_id, feature_id, first_used_on) SELECT '%s', f, csmcp.today() - 30 "
            "FROM unnest(ARRAY['%s', '%s', '%s']) f;"
            "SELECT (SELECT count(*) FROM csmcp.adoption_derived_check()) > 0, "
            "csmcp.tool_track_adoption_milestones('{}', 'test') = csmcp.track_adoption_milestones_scratch('{}', 'test');"
            "ROLLBACK;") % (c, c, c, *self.features))
        self.assertEqual(out.splitlines()[-1], "t|f")
        self.assertEqual(self.checks(), "0")

    def test_2b_missed_write_is_detected_0146_0148(self):
        """The same for the rollups of 0146-0148: a communication, a ticket, a usage row under the
        engagement day table and a contract each written with its trigger disabled (rolled back)."""
        c = self.clients[1]
        eng = "csmcp.tool_analyze_engagement_patterns('{}', 'test') = csmcp.analyze_engagement_patterns_scratch('{}', 'test')"
        du.psql(self.url, "SELECT csmcp.tool_analyze_engagement_patterns('{}', 'test')")   # the day table of (90, today)
        for what, check, write in (
                ("comm_daily_ins", "(SELECT count(*) FROM csmcp.engage_contacts_check())",
                 "ALTER TABLE communications DISABLE TRIGGER comm_daily_ins;"
                 "INSERT INTO communications (client_id, channel, direction, occurred_at) VALUES ('%s', 'sms', 'inbound', now());" % c),
                ("ticket_daily_upd", "(SELECT count(*) FROM csmcp.engage_contacts_check())",
                 "ALTER TABLE support_tickets DISABLE TRIGGER ticket_daily_upd;"
                 "UPDATE support_tickets SET priority = 'P0', created_at = now() WHERE client_id = '%s';" % c),
                ("usage_moments_ins (engage_window)", "(SELECT count(*) FROM csmcp.usage_moments_check()) "
                 "+ (SELECT count(*) FROM csmcp.engage_window_check())",
                 "INSERT INTO accounts (client_id, client_name, company_name, tier, lifecycle_stage) "
                 "VALUES ('%s_new', 'New', 'New Ltd', 'standard', 'active');"
                 "ALTER TABLE usage_daily DISABLE TRIGGER usage_moments_ins;"   # (a new active account's 30 days: its trend)
                 "INSERT INTO usage_daily (client_id, day, active_users, events) SELECT '%s_new', csmcp.today() - k, 40 + k, 9 "
                 "FROM generate_series(0, 29) k;" % (self.p, self.p))):
            out = du.psql(self.url, "BEGIN; UPDATE accounts SET status = 'active' WHERE client_id IN ('%s', '%s'); %s SELECT %s > 0, %s; "
                                    "ROLLBACK;" % (c, self.clients[3], write, check, eng))
            self.assertEqual(out.splitlines()[-1], "t|f", what)
        out = du.psql(self.url, (
            "BEGIN;"
            "UPDATE accounts SET status = 'active' WHERE client_id = '%s';"
            "ALTER TABLE contracts DISABLE TRIGGER adoption_account_upd;"
            "UPDATE contracts SET start_date = start_date - 400 WHERE client_id = '%s';"
            "SELECT (SELECT count(*) FROM csmcp.adoption_account_check()) > 0, "
            "csmcp.tool_track_adoption_milestones('{}', 'test') = csmcp.track_adoption_milestones_scratch('{}', 'test');"
            "ROLLBACK;") % (self.clients[0], self.clients[0]))
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
        du.psql(self.url, "SELECT csmcp.usage_moments_rebuild(); SELECT csmcp.adoption_derived_rebuild(); "
                          "SELECT csmcp.engage_contacts_rebuild(); SELECT csmcp.adoption_account_rebuild()")
        self.assertEqual(self.checks(), "0")
        self.assert_same("analyze_engagement_patterns", {})
        self.assert_same("track_adoption_milestones", {})
        # a change of the feature catalogue (which features are core) recomputes every account
        du.psql(self.url, "UPDATE features SET is_core = NOT is_core WHERE feature_id = '%s'" % self.features[1])
        self.assertEqual(self.checks(), "0")
        self.assert_same("track_adoption_milestones", {})
