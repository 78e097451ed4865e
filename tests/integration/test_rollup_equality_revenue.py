"""Issue 21: the expansion & revenue tools of helper "revenue" answer exactly as their former SQL
(csmcp.<tool>_scratch) after randomized (seeded, so reproducible) write sequences with
concurrent writers.

Rollup: crosssell_own (migration 0171), per active account with an active contract its tier,
industry, name, contract value and seats and the contract's products, kept by statement triggers
on accounts, contracts and contract_products; read by identify_crosssell_opportunities and the
segment of optimize_customer_lifetime_value. Rewritten without a rollup: identify_upsell_
opportunities (utilisation from usage_cum, typed rows), track_revenue_expansion's pipeline (one
pass), the opportunity upsert (open rows of the candidates' type first).
Session 6 (helper cross): crosssell_peers / crosssell_owners / crosssell_cand (migration 0150),
per group the peer counts and per account the candidates, maintained from crosssell_own; a
portfolio call persists only the candidates marked since (account or opportunity written) or of
groups whose counts moved (crosssell_synced); identify_expansion_opportunities (typed upsert,
weighted-value index 0151) against its former SQL.
Session 6 (helper "renew"): forecast_inputs (migration 0172), per active contract of an account
that is not churned, the account's name and computed health, an open escalation and the earliest
unpaid due date, kept by statement triggers on accounts, contracts, invoices and escalations; read
by forecast_renewals (which persists its forecasts: called in both orders like the opportunity
tools, its count is forecasts_persisted). account_health_latest (migration 0173), per account its
status, tier and latest health components, kept by triggers on accounts and health_scores, and
revenue_balance (migration 0174), per account the sum, count and latest date of its revenue
events, kept by triggers on revenue_events: read by optimize_customer_lifetime_value and
track_revenue_expansion (also for periods given by period_start).
  * 4 concurrent writers, each a psql session running 60 random statements (autocommit) on
    accounts (tier, industry, status, name, health), contracts (status, value, seats),
    contract_products (insert, delete, multi-account), usage_daily and expansion_opportunities
    (won/lost, value) of 10 shared fixture accounts - a fixed seed per writer;
  * then csmcp.crosssell_own_check() is empty and, for many argument sets, each tool's answer
    equals its _scratch reference: the persisting tools are called in both orders (tool then
    reference, reference then tool) and the second call must find nothing to create or update
    (the first persisted exactly what the other computes); the answers are equal but for those
    two counts (and the summary sentence that repeats them);
  * with a maintaining trigger disabled (rolled back), a write makes the check and the tool's
    answer differ from the reference, so the test can fail.
Both calls of a pair run in one REPEATABLE READ transaction (other test modules may write to the
shared database meanwhile), retried on a serialization failure.
"""
import datetime
import json
import random
import re

import data_util as du
import lib

TIERS = ["starter", "standard", "professional"]
COUNTS = ("opportunities_created", "opportunities_updated")


def strip_counts(ans):
    """The answer without the created/updated counts (and the summary sentence naming them)."""
    a = json.loads(json.dumps(ans))
    summ = a.get("opportunity_summary") or {}
    got = {k: summ.pop(k, None) for k in COUNTS}
    if isinstance(a.get("summary"), str):
        a["summary"] = re.sub(r"; \d+ created, \d+ updated\.$", ".", a["summary"])
    return a, got


class RevenueRollupEquality(lib.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.url = lib.database_url()
        cls.today = datetime.date.fromisoformat(du.psql(cls.url, "SELECT csmcp.today()"))
        cls.p = p = du.prefix()
        cls.clients = ["%s_%d" % (p, i) for i in range(10)]
        cls.products = ["%s_a" % p, "%s_b" % p, "%s_c" % p, "%s_d" % p]
        rnd = random.Random(2170)
        sql = ["INSERT INTO products (product_id, name, family, list_price) VALUES "
               "('%s_a', 'Rev analytics', 'analytics', 12000), ('%s_b', 'Rev insights', 'analytics', 9000), "
               "('%s_c', 'Rev API', 'integration', 7000), ('%s_d', 'Rev SSO', 'security', 5000);" % (p, p, p, p),
               "INSERT INTO product_prerequisites VALUES ('%s_b', '%s_a');" % (p, p)]
        for i, c in enumerate(cls.clients):
            sql.append("INSERT INTO accounts (client_id, client_name, company_name, tier, industry, lifecycle_stage, health_score) "
                       "VALUES ('%s', 'Rev %d', 'Rev %d Ltd', '%s', 'R %s %d', 'active', %d);"
                       % (c, i, i, TIERS[i % 2], p, i % 2, 70 + rnd.randrange(30)))
            sql.append("INSERT INTO contracts (contract_id, client_id, tier, contract_value, licensed_seats, start_date, end_date, status) "
                       "VALUES ('CTR-%s', '%s', '%s', %d, %d, csmcp.today() - 200, csmcp.today() + %d, 'active');"
                       % (c, c, TIERS[i % 2], 10000 + 1000 * i, 10 + i, 20 + 15 * i))
            for pr in rnd.sample(cls.products, rnd.randrange(0, 3)):
                sql.append("INSERT INTO contract_products (contract_id, product_id) VALUES ('CTR-%s', '%s') "
                           "ON CONFLICT DO NOTHING;" % (c, pr))
            sql.append("INSERT INTO usage_daily (client_id, day, active_users) SELECT '%s', csmcp.today() - g, %d "
                       "FROM generate_series(0, 40) g;" % (c, 8 + i))
        du.psql(cls.url, "".join(sql))

    @classmethod
    def tearDownClass(cls):
        du.psql(cls.url, "DELETE FROM accounts WHERE client_id LIKE '%s\\_%%'; "
                         "DELETE FROM products WHERE product_id LIKE '%s\\_%%'" % (cls.p, cls.p))

    def writer(self, seed, errors):
        rnd = random.Random(seed)
        stmts = []
        for k in range(60):
            c = rnd.choice(self.clients)
            op = rnd.random()
            if op < 0.2:
                stmts.append("INSERT INTO contract_products (contract_id, product_id) VALUES ('CTR-%s', '%s') ON CONFLICT DO NOTHING;"
                             % (c, rnd.choice(self.products)))
            elif op < 0.33:
                stmts.append("DELETE FROM contract_products WHERE contract_id = 'CTR-%s' AND product_id = '%s';"
                             % (c, rnd.choice(self.products)))
            elif op < 0.43:
                stmts.append("UPDATE contracts SET status = '%s', contract_value = contract_value + %d, licensed_seats = %s "
                             "WHERE contract_id = 'CTR-%s';"
                             % (rnd.choice(["active", "active", "expired"]), rnd.randrange(-500, 500),
                                rnd.choice(["NULL", "12", "30", "120"]), c))
            elif op < 0.56:
                stmts.append("UPDATE accounts SET tier = '%s', industry = 'R %s %d', status = '%s', client_name = 'Rev %s %d', "
                             "health_score = %d WHERE client_id = '%s';"
                             % (rnd.choice(TIERS), self.p, rnd.randrange(2), rnd.choice(["active", "active", "active", "paused"]),
                                c[-1], k, rnd.randrange(60, 101), c))
            elif op < 0.64:
                stmts.append("UPDATE accounts SET health_score = %d, lifecycle_stage = '%s' WHERE client_id = '%s';"
                             % (rnd.randrange(40, 101), rnd.choice(["active", "active", "at_risk", "churned"]), c))
            elif op < 0.74:
                stmts.append("INSERT INTO usage_daily (client_id, day, active_users) VALUES ('%s', csmcp.today() - %d, %d) "
                             "ON CONFLICT (client_id, day) DO UPDATE SET active_users = excluded.active_users;"
                             % (c, rnd.randrange(0, 45), rnd.randrange(0, 40)))
            elif op < 0.84:
                stmts.append("UPDATE expansion_opportunities SET %s WHERE opportunity_id = (SELECT min(opportunity_id) "
                             "FROM expansion_opportunities WHERE client_id = '%s' AND stage NOT IN ('won', 'lost'));"
                             % (rnd.choice(["stage = 'won'", "stage = 'lost'", "estimated_value = estimated_value + 1",
                                            "probability = 0.5"]), c))
            else:   # one statement over several accounts
                a, b = rnd.sample(self.clients, 2)
                stmts.append("INSERT INTO contract_products (contract_id, product_id) SELECT 'CTR-' || c, p "
                             "FROM unnest(ARRAY['%s', '%s']) c, unnest(ARRAY['%s', '%s']) p ON CONFLICT DO NOTHING;"
                             % (a, b, rnd.choice(self.products), rnd.choice(self.products)))
                stmts.append("UPDATE accounts SET industry = 'R %s %d' WHERE client_id IN ('%s', '%s');"
                             % (self.p, rnd.randrange(2), a, b))
            if rnd.random() < 0.45:
                stmts.append(self.forecast_stmt(rnd, seed, k, c))
            if rnd.random() < 0.3:
                stmts.append(self.clv_stmt(rnd, c))
        r = lib.psql_run(self.url, "\n".join(stmts), timeout=300)
        if r.returncode != 0:
            errors.append(r.stderr)

    def opp_writer(self, seed, errors):
        """Writes of the opportunities only (their accounts untouched): the cross-sell candidates
        of a portfolio call are then found through the marks of these writes alone."""
        rnd = random.Random(seed)
        stmts = []
        for _ in range(20):
            c = rnd.choice(self.clients)
            stmts.append("UPDATE expansion_opportunities SET %s WHERE opportunity_id = (SELECT opportunity_id "
                         "FROM expansion_opportunities WHERE client_id = '%s' AND stage NOT IN ('won', 'lost') "
                         "AND opportunity_key LIKE 'cross_sell:%%' ORDER BY opportunity_id OFFSET %d LIMIT 1);"
                         % (rnd.choice(["stage = 'won'", "stage = 'lost'", "estimated_value = estimated_value + 1",
                                        "probability = 0.5", "details = details || '{\"x\": 1}'"]), c, rnd.randrange(3)))
            if rnd.random() < 0.2:
                stmts.append("DELETE FROM expansion_opportunities WHERE opportunity_id = (SELECT max(opportunity_id) "
                             "FROM expansion_opportunities WHERE client_id = '%s' AND opportunity_key LIKE 'cross_sell:%%');" % c)
        r = lib.psql_run(self.url, "\n".join(stmts), timeout=300)
        if r.returncode != 0:
            errors.append(r.stderr)

    def forecast_stmt(self, rnd, seed, k, c):
        """A write to an input of forecast_renewals (forecast_inputs or the stored forecast)."""
        op = rnd.random()
        if op < 0.2:
            return ("INSERT INTO invoices (invoice_id, contract_id, client_id, amount, issued_on, due_on, paid_on) "
                    "VALUES ('INV-%s-%d-%d', 'CTR-%s', '%s', 100, csmcp.today() - 60, csmcp.today() + %d, %s);"
                    % (self.p, seed, k, c, c, rnd.randrange(-30, 30), rnd.choice(["NULL", "NULL", "csmcp.today() - 1"])))
        if op < 0.35:
            return ("UPDATE invoices SET paid_on = CASE WHEN paid_on IS NULL THEN csmcp.today() END WHERE invoice_id = "
                    "(SELECT %s(invoice_id) FROM invoices WHERE contract_id = 'CTR-%s');" % (rnd.choice(["min", "max"]), c))
        if op < 0.45:
            return ("UPDATE invoices SET due_on = greatest(issued_on, due_on - %d) WHERE contract_id = 'CTR-%s' AND paid_on IS NULL;"
                    % (rnd.randrange(1, 40), c))
        if op < 0.52:
            return "DELETE FROM invoices WHERE invoice_id = (SELECT max(invoice_id) FROM invoices WHERE contract_id = 'CTR-%s');" % c
        if op < 0.57:   # several accounts in one statement
            a, b = rnd.sample(self.clients, 2)
            return ("UPDATE invoices SET paid_on = NULL WHERE contract_id IN ('CTR-%s', 'CTR-%s') AND paid_on IS NOT NULL;" % (a, b))
        if op < 0.7:
            return ("INSERT INTO escalations (escalation_id, client_id, severity, status, summary, sla_hours) "
                    "VALUES ('esc_%d%02d%03d', '%s', 'high', 'open', 'rev test', 24);"
                    % (int(self.p[2:], 16), seed % 100, k, c))
        if op < 0.8:
            return ("UPDATE escalations SET status = '%s', resolved_at = %s WHERE escalation_id = (SELECT min(escalation_id) "
                    "FROM escalations WHERE client_id = '%s' AND status IN ('open', 'in_progress'));"
                    % rnd.choice([("in_progress", "NULL", c), ("resolved", "now()", c)]))
        if op < 0.88:
            return "UPDATE contracts SET end_date = csmcp.today() + %d WHERE contract_id = 'CTR-%s';" % (rnd.randrange(1, 200), c)
        if op < 0.94:
            return ("UPDATE renewals SET %s WHERE contract_id = 'CTR-%s';"
                    % (rnd.choice(["status = 'won'", "status = 'lost'", "forecast_arr = forecast_arr + 1", "probability = 0.5"]), c))
        return "UPDATE accounts SET status = '%s' WHERE client_id = '%s';" % (rnd.choice(["churned", "active"]), c)

    def clv_stmt(self, rnd, c):
        """A write to health_scores or revenue_events (account_health_latest, revenue_balance)."""
        op = rnd.random()
        if op < 0.3:
            return ("INSERT INTO health_scores (client_id, calculated_at, usage_score, engagement_score, support_score, "
                    "satisfaction_score, payment_score, overall_score, trend, risk_level, churn_probability, lookback_days) "
                    "VALUES ('%s', now() - interval '%d hours', %d, %d, %d, %d.5, %d, 70, 'stable', 'low', 0.1, 30);"
                    % (c, rnd.choice([0, 0, 5, 500]), rnd.randrange(40, 100), rnd.randrange(40, 100), rnd.randrange(40, 100),
                       rnd.randrange(40, 99), rnd.randrange(40, 100)))
        if op < 0.4:
            return ("DELETE FROM health_scores WHERE score_id = (SELECT score_id FROM health_scores WHERE client_id = '%s' "
                    "ORDER BY calculated_at DESC, score_id DESC LIMIT 1);" % c)
        if op < 0.75:
            kind, sign = rnd.choice([("new", 1), ("expansion", 1), ("contraction", -1), ("churn", -1), ("renewal", rnd.choice([1, -1]))])
            return ("INSERT INTO revenue_events (client_id, kind, arr_delta, occurred_on) VALUES ('%s', '%s', %d.%02d, csmcp.today() - %d);"
                    % (c, kind, sign * rnd.randrange(0, 5000), rnd.randrange(100), rnd.choice([0, 3, 40, 100, 200, 400, 800])))
        if op < 0.85:
            return ("UPDATE revenue_events SET occurred_on = occurred_on - %d WHERE event_id = (SELECT max(event_id) "
                    "FROM revenue_events WHERE client_id = '%s');" % (rnd.randrange(1, 120), c))
        return "DELETE FROM revenue_events WHERE event_id = (SELECT min(event_id) FROM revenue_events WHERE client_id = '%s');" % c

    def pair(self, first, second, args):
        """first(args) then second(args) in one REPEATABLE READ transaction: both answers."""
        a = json.dumps(args).replace("'", "''")
        sql = ("BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT csmcp.%s('%s', 'test'); SELECT csmcp.%s('%s', 'test'); COMMIT;"
               % (first, a, second, a))
        for _ in range(5):
            r = lib.psql_run(self.url, sql, timeout=300)
            if r.returncode == 0:
                out = [x for x in r.stdout.split("\n") if x.strip()]
                return json.loads(out[0]), json.loads(out[1])
            self.assertIn("could not serialize", r.stderr)
        self.fail("5 serialization failures in a row")

    def check_persisting(self, tool, args):
        for order in ((tool, tool + "_scratch"), (tool + "_scratch", tool)):
            a, b = self.pair(order[0], order[1], args)
            if tool == "tool_forecast_renewals":
                sa, sb, cb = dict(a), dict(b), b.get("forecasts_persisted")
                sa.pop("forecasts_persisted", None)
                sb.pop("forecasts_persisted", None)
                self.assertEqual(cb, 0, "%s after %s %s: the second call still had work" % (order[1], order[0], args))
            else:
                sa, _ = strip_counts(a)
                sb, cb = strip_counts(b)
                self.assertEqual(cb, {"opportunities_created": 0, "opportunities_updated": 0},
                                 "%s after %s %s: the second call still had work" % (order[1], order[0], args))
            self.assertEqual(sa, sb, "%s vs %s %s" % (order[0], order[1], args))

    def check_expansion(self, args):
        """identify_expansion_opportunities against its reference: the counts are in detection."""
        tool = "tool_identify_expansion_opportunities"
        for order in ((tool, tool + "_scratch"), (tool + "_scratch", tool)):
            a, b = self.pair(order[0], order[1], args)
            got = {k: b["detection"].pop(k) for k in ("created", "updated")}
            for k in ("created", "updated"):
                a["detection"].pop(k)
            self.assertEqual(got, {"created": 0, "updated": 0},
                             "%s after %s %s: the second call still had work" % (order[1], order[0], args))
            self.assertEqual(a, b, "%s vs %s %s" % (order[0], order[1], args))

    def check_read(self, tool, args):
        a, b = self.pair(tool, tool + "_scratch", args)
        self.assertEqual(a, b, "%s %s" % (tool, args))

    def all_tools(self):
        one = self.clients[:4]
        for args in [{"limit": 20}, {}, {"min_fit_score": 0.2, "limit": 1000}, {"product_family": "analytics", "min_fit_score": 0},
                     {"min_fit_score": 0, "limit": 5}]:
            self.check_persisting("tool_identify_crosssell_opportunities", args)
        for c in one:
            # one account: the error (no active contract) is part of the contract too
            r = lib.psql_run(self.url, "SELECT csmcp.tool_identify_crosssell_opportunities('{\"client_id\": \"%s\", "
                                       "\"min_fit_score\": 0}', 'test')" % c)
            if r.returncode == 0:
                self.check_persisting("tool_identify_crosssell_opportunities", {"client_id": c, "min_fit_score": 0})
            else:
                self.assertIn("no active contract", r.stderr)
        for args in [{"limit": 20}, {"min_health_score": 50, "min_usage_threshold": 0.3, "limit": 1000}] + \
                [{"client_id": c, "min_health_score": 0, "min_usage_threshold": 0} for c in one]:
            self.check_persisting("tool_identify_upsell_opportunities", args)
        for args in [{"limit": 20}, {"opportunity_types": ["user_expansion", "cross_sell"], "limit": 50}] + \
                [{"client_id": c} for c in one]:
            self.check_expansion(args)
        for args in [{}, {"tier": "starter"}, {"tier": "standard", "optimization_focus": "efficiency"},
                     {"optimization_focus": "expansion"}] + [{"client_id": c} for c in one]:
            self.check_read("tool_optimize_customer_lifetime_value", args)
        for args in [{}, {"time_period": "annual"}, {"time_period": "monthly", "include_pipeline": True},
                     {"time_period": "monthly", "period_start": str(self.today), "include_pipeline": False},
                     {"time_period": "quarterly", "period_start": str(self.today - datetime.timedelta(days=200))},
                     {"time_period": "annual", "period_start": str(self.today - datetime.timedelta(days=900))}]:
            self.check_read("tool_track_revenue_expansion", args)
        for args in [{"limit": 20}, {"forecast_period_days": 730, "limit": 1000}, {"forecast_period_days": 40, "include_risk_analysis": False}] + \
                [{"client_id": c, "forecast_period_days": 365} for c in one]:
            self.check_persisting("tool_forecast_renewals", args)
        # session 7 (helper valuex): prioritize_portfolio's rows from forecast_inputs; small pages
        # (within the accounts with a priority: the fast path), one past them and one CSM's list
        # (both the former SQL)
        for args in [{"limit": 1}, {"limit": 5}, {"limit": 3, "offset": 4}, {}, {"limit": 1000},
                     {"limit": 2, "offset": 1000000}, {"csm_assigned": "nobody %s" % self.p}]:
            self.check_read("tool_prioritize_portfolio", args)
        # session 7: identify_churn_risk's portfolio summary from the at-risk accounts only
        for args in [{"limit": 5}, {"health_score_threshold": 80, "limit": 3, "offset": 2}, {"health_score_threshold": 0},
                     {"health_score_threshold": 100, "limit": 2}] + [{"client_id": c} for c in one]:
            self.check_read("tool_identify_churn_risk", args)

    def test_concurrent_random_writes_keep_answers_exact(self):
        self.all_tools()   # the starting state
        self.assertEqual(du.run_writers(self.writer, [2170 + n for n in range(4)], timeout=300), [])
        self.assertEqual(du.psql(self.url, "SELECT count(*) FROM csmcp.crosssell_own_check()"), "0")
        self.assertEqual(du.psql(self.url, "SELECT count(*) FROM csmcp.crosssell_cand_check()"), "0")
        self.assertEqual(du.psql(self.url, "SELECT count(*) FROM csmcp.forecast_inputs_check()"), "0")
        self.assertEqual(du.psql(self.url, "SELECT count(*) FROM csmcp.account_health_latest_check()"), "0")
        self.assertEqual(du.psql(self.url, "SELECT count(*) FROM csmcp.revenue_balance_check()"), "0")
        self.assertGreater(int(du.psql(self.url, "SELECT count(*) FROM crosssell_own WHERE client_id LIKE '%s\\_%%'" % self.p)), 0)
        self.all_tools()
        # then writes of the opportunities alone: every pair persisted everything above, so a
        # cross-sell portfolio call sees these writes only through the marks they set
        self.assertEqual(du.run_writers(self.opp_writer, [2270 + n for n in range(4)], timeout=300), [])
        self.all_tools()

    def test_fails_without_maintenance(self):
        """With the contract_products trigger disabled (rolled back), a new product of an active
        contract leaves crosssell_own stale: the check reports it and the tool's answer differs
        from the reference."""
        c = self.clients[2]
        du.psql(self.url, "UPDATE accounts SET status = 'active' WHERE client_id = '%s'; "
                          "UPDATE contracts SET status = 'active' WHERE contract_id = 'CTR-%s'; "
                          "DELETE FROM contract_products WHERE contract_id = 'CTR-%s'" % (c, c, c))
        args = json.dumps({"client_id": c, "min_fit_score": 0})
        out = du.psql(self.url, "BEGIN; ALTER TABLE contract_products DISABLE TRIGGER crosssell_own_products_ins; "
                                "INSERT INTO contract_products (contract_id, product_id) VALUES ('CTR-%s', '%s'), ('CTR-%s', '%s'); "
                                "SELECT count(*) FROM csmcp.crosssell_own_check() WHERE client_id = '%s'; "
                                "SELECT csmcp.tool_identify_crosssell_opportunities('%s', 'test') -> 'opportunity_summary' -> 'total_opportunities' "
                                "= csmcp.tool_identify_crosssell_opportunities_scratch('%s', 'test') -> 'opportunity_summary' -> 'total_opportunities'; "
                                "ROLLBACK;" % (c, self.products[0], c, self.products[2], c, args, args))
        lines = out.split("\n")
        self.assertEqual(lines[-2:], ["1", "f"], out)
        self.assertEqual(du.psql(self.url, "SELECT count(*) FROM csmcp.crosssell_own_check()"), "0")

    def test_fails_without_marks(self):
        """Session 6: a portfolio call persists only the candidates marked since the last one (or
        of groups whose peer counts moved). With the trigger that marks a candidate when its
        opportunity is written disabled (rolled back), a closed opportunity is not re-created:
        the tool creates nothing where the reference creates it; with the trigger, both do."""
        c = self.clients[3]
        du.psql(self.url, "UPDATE accounts SET status = 'active' WHERE client_id = '%s'; "
                          "UPDATE contracts SET status = 'active' WHERE contract_id = 'CTR-%s'; "
                          "DELETE FROM contract_products WHERE contract_id = 'CTR-%s'" % (c, c, c))
        args = json.dumps({"min_fit_score": 0, "limit": 1})
        tool = "SELECT csmcp.tool_identify_crosssell_opportunities('%s', 'test') #> '{opportunity_summary,opportunities_created}'; " % args
        close = ("UPDATE expansion_opportunities SET stage = 'won' WHERE client_id = '%s' AND opportunity_key = 'cross_sell:%s' "
                 "AND stage NOT IN ('won', 'lost'); " % (c, self.products[3]))
        for disable, want in (("", "1"), ("ALTER TABLE expansion_opportunities DISABLE TRIGGER crosssell_cand_opp_upd; ", "0")):
            out = du.psql(self.url, "BEGIN; " + disable + tool + close + tool +
                          "SELECT csmcp.tool_identify_crosssell_opportunities_scratch('%s', 'test') "
                          "#> '{opportunity_summary,opportunities_created}'; ROLLBACK;" % args)
            self.assertEqual(out.split("\n")[-2:], [want, str(1 - int(want))], (disable, out))

    def test_forecast_fails_without_maintenance(self):
        """With the invoices trigger disabled (rolled back), a new overdue invoice leaves
        forecast_inputs stale: the check reports it and forecast_renewals' answer differs from the
        reference (the renewal is not seen as overdue)."""
        c = self.clients[3]
        du.psql(self.url, "UPDATE accounts SET status = 'active' WHERE client_id = '%s'; "
                          "UPDATE contracts SET status = 'active', end_date = csmcp.today() + 30 WHERE contract_id = 'CTR-%s'; "
                          "DELETE FROM invoices WHERE contract_id = 'CTR-%s'" % (c, c, c))
        args = json.dumps({"client_id": c})
        out = du.psql(self.url, "BEGIN; ALTER TABLE invoices DISABLE TRIGGER forecast_inputs_invoices_ins; "
                                "INSERT INTO invoices (invoice_id, contract_id, client_id, amount, issued_on, due_on) "
                                "VALUES ('INV-%s-stale', 'CTR-%s', '%s', 100, csmcp.today() - 40, csmcp.today() - 10); "
                                "SELECT count(*) FROM csmcp.forecast_inputs_check() WHERE contract_id = 'CTR-%s'; "
                                "SELECT csmcp.tool_forecast_renewals('%s', 'test') -> 'renewals' -> 0 -> 'payment_overdue'; "
                                "SELECT csmcp.tool_forecast_renewals_scratch('%s', 'test') -> 'renewals' -> 0 -> 'payment_overdue'; "
                                "ROLLBACK;" % (self.p, c, c, c, args, args))
        self.assertEqual(out.split("\n")[-3:], ["1", "false", "true"], out)
        self.assertEqual(du.psql(self.url, "SELECT count(*) FROM csmcp.forecast_inputs_check()"), "0")

    def test_prioritize_fails_without_maintenance(self):
        """Session 7: with the accounts trigger of forecast_inputs disabled (rolled back), a health
        change leaves forecast_inputs stale: the check reports it and prioritize_portfolio's total
        priority differs from the reference's."""
        c = self.clients[5]
        du.psql(self.url, "UPDATE accounts SET status = 'active', health_score = 90 WHERE client_id = '%s'; "
                          "UPDATE contracts SET status = 'active' WHERE contract_id = 'CTR-%s'" % (c, c))
        out = du.psql(self.url, "BEGIN; ALTER TABLE accounts DISABLE TRIGGER forecast_inputs_accounts_upd; "
                                "UPDATE accounts SET health_score = 3 WHERE client_id = '%s'; "
                                "SELECT count(*) FROM csmcp.forecast_inputs_check() WHERE contract_id = 'CTR-%s'; "
                                "SELECT csmcp.tool_prioritize_portfolio('{\"limit\": 1}', 'test') -> 'total_priority' "
                                "= csmcp.tool_prioritize_portfolio_scratch('{\"limit\": 1}', 'test') -> 'total_priority'; "
                                "ROLLBACK;" % (c, c))
        self.assertEqual(out.split("\n")[-2:], ["1", "f"], out)
        self.assertEqual(du.psql(self.url, "SELECT csmcp.tool_prioritize_portfolio('{\"limit\": 1}', 'test') "
                                           "= csmcp.tool_prioritize_portfolio_scratch('{\"limit\": 1}', 'test')"), "t")

    def test_clv_and_expansion_fail_without_maintenance(self):
        """With the health_scores / revenue_events triggers disabled (rolled back), a new latest
        score and a back-dated churn event leave account_health_latest and revenue_balance stale:
        the checks report them and the tools' answers differ from their references."""
        c = self.clients[4]
        du.psql(self.url, "UPDATE accounts SET status = 'active' WHERE client_id = '%s'" % c)
        out = du.psql(self.url, "BEGIN; ALTER TABLE health_scores DISABLE TRIGGER account_health_latest_scores_ins; "
                                "ALTER TABLE revenue_events DISABLE TRIGGER revenue_balance_ins; "
                                "INSERT INTO health_scores (client_id, calculated_at, usage_score, engagement_score, support_score, "
                                "satisfaction_score, payment_score, overall_score, trend, risk_level, churn_probability, lookback_days) "
                                "VALUES ('%s', now() + interval '1 day', 1, 1, 1, 1, 1, 1, 'stable', 'low', 0.1, 30); "
                                "INSERT INTO revenue_events (client_id, kind, arr_delta, occurred_on) "
                                "VALUES ('%s', 'new', 777777.77, csmcp.today() - 900); "
                                "SELECT count(*) FROM csmcp.account_health_latest_check() WHERE client_id = '%s'; "
                                "SELECT count(*) FROM csmcp.revenue_balance_check() WHERE client_id = '%s'; "
                                "SELECT csmcp.tool_optimize_customer_lifetime_value('{\"optimization_focus\": \"retention\"}', 'test') "
                                "= csmcp.tool_optimize_customer_lifetime_value_scratch('{\"optimization_focus\": \"retention\"}', 'test'); "
                                "SELECT csmcp.tool_track_revenue_expansion('{}', 'test') = csmcp.tool_track_revenue_expansion_scratch('{}', 'test'); "
                                "ROLLBACK;" % (c, c, c, c))
        self.assertEqual(out.split("\n")[-4:], ["1", "1", "f", "f"], out)

    def test_account_deletion_and_rebuild(self):
        """An account's deletion (cascade) removes its row; crosssell_own_rebuild recomputes."""
        c = "%s_gone" % self.p
        du.psql(self.url, "INSERT INTO accounts (client_id, client_name, company_name, tier, lifecycle_stage) "
                          "VALUES ('%s', 'Gone', 'Gone Ltd', 'starter', 'active'); "
                          "INSERT INTO contracts (contract_id, client_id, tier, contract_value, start_date, end_date) "
                          "VALUES ('CTR-%s', '%s', 'starter', 1000, csmcp.today() - 10, csmcp.today() + 10); "
                          "INSERT INTO contract_products VALUES ('CTR-%s', '%s', NULL);" % (c, c, c, c, self.products[0]))
        self.assertEqual(du.psql(self.url, "SELECT products::text FROM crosssell_own WHERE client_id = '%s'" % c),
                         "{%s}" % self.products[0])
        du.psql(self.url, "DELETE FROM accounts WHERE client_id = '%s'" % c)
        self.assertEqual(du.psql(self.url, "SELECT count(*) FROM crosssell_own WHERE client_id = '%s'" % c), "0")
        self.assertEqual(du.psql(self.url, "SELECT count(*) FROM crosssell_cand WHERE client_id = '%s'" % c), "0")
        du.psql(self.url, "SELECT csmcp.crosssell_own_rebuild()")
        self.assertEqual(du.psql(self.url, "SELECT count(*) FROM csmcp.crosssell_own_check()"), "0")
        self.assertEqual(du.psql(self.url, "SELECT count(*) FROM csmcp.crosssell_cand_check()"), "0")
        du.psql(self.url, "SELECT csmcp.crosssell_cand_rebuild()")
        self.assertEqual(du.psql(self.url, "SELECT count(*) FROM csmcp.crosssell_cand_check()"), "0")
