"""list_clients' maintained portfolio totals (migration 0014): after every kind of write, the
summary list_clients returns equals a from-scratch computation over the same rows.

A private database on the test cluster (migrated, seeded with 30 accounts) so the whole-portfolio
figures are not moved by other tests. After each write path - register_client,
update_client_info (tier, contract value, status -> churned), calculate_health_score,
manage_lifecycle_stages, ingest_usage_events (today, the edges of the 7-day window, tomorrow),
csmcpctl import usage, GDPR erasure, a cascading DELETE, compaction, TRUNCATE, a re-seed, and
concurrent writers and forced interleavings of a usage write with a tier change - three things
must hold:
  * csmcp.portfolio_check() (maintained totals vs the base tables) returns no row;
  * list_clients' summary (unfiltered, by tier, by stage, by both) equals the figures computed
    here in Python from the raw rows (accounts, active contracts, usage_daily);
  * the same summary through the general path (a no-op filter health_score_min = 0) is equal.
"""
import datetime
import decimal
import json
import os
import tempfile
import threading
import time
import urllib.parse

import lib

TIERS = ["starter", "standard", "professional", "enterprise"]
STAGES = ["onboarding", "active", "at_risk", "churned", "expansion", "renewal"]
D = decimal.Decimal


def today():
    return datetime.datetime.now(datetime.timezone.utc).date()


def round1(x):
    return D(x).quantize(D("0.1"), rounding=decimal.ROUND_HALF_UP)


# an account's effective health score (issue 24): its active manual override, else the computed
# score; list_clients shows, filters, sorts and averages it
EFF = ("coalesce((SELECT o.score FROM health_overrides o WHERE o.client_id = a.client_id "
       "AND o.cleared_at IS NULL AND o.expires_at > now()), a.health_score)")


class PortfolioTotalsTest(lib.TestCase):
    @classmethod
    def setUpClass(cls):
        admin = lib.need_env("CSMCP_PG_ADMIN_URL")
        cls.admin = admin
        cls.dbname = "csmcp_portfolio_%d" % os.getpid()
        lib.psql(admin, "DROP DATABASE IF EXISTS %s WITH (FORCE)" % cls.dbname)
        lib.psql(admin, "CREATE DATABASE %s OWNER csmcp" % cls.dbname)
        app = urllib.parse.urlparse(lib.database_url())
        cls.url = app._replace(path="/" + cls.dbname).geturl()
        for args in (("migrate",), ("seed", "--accounts", "30")):
            r = lib.ctl_db(cls.url, *args)
            if r.returncode != 0:
                raise AssertionError("csmcpctl %s: %s%s" % (args, r.stdout, r.stderr))
        cls.tmp = tempfile.mkdtemp(prefix="csmcp-portfolio-")
        cls.d = lib.Csmcpd(workers=2, conf={"database": {"url": cls.url}}).start()
        cls.s = cls.d.session()

    @classmethod
    def tearDownClass(cls):
        cls.s.close()
        cls.d.stop()
        lib.psql(cls.admin, "DROP DATABASE IF EXISTS %s WITH (FORCE)" % cls.dbname)

    # ------------------------------------------------------------ helpers

    def q(self, sql):
        return lib.psql(self.url, sql)

    def scratch(self, tier=None, stage=None):
        """The summary computed here from the raw rows."""
        t = today()
        rows = json.loads(self.q(
            "SELECT coalesce(json_agg(json_build_object('id', a.client_id, 'tier', a.tier, "
            # health: the effective score (an active manual override, else the computed one; issue 24)
            "'stage', a.lifecycle_stage, 'h', " + EFF + ", 'v', c.contract_value::text)), '[]') "
            "FROM accounts a LEFT JOIN contracts c ON c.client_id = a.client_id AND c.status = 'active'"))
        rows = [r for r in rows if (tier is None or r["tier"] == tier) and
                (stage is None or r["stage"] == stage)]
        ids = {r["id"] for r in rows}
        usage = json.loads(self.q(
            "SELECT coalesce(json_agg(json_build_object('id', client_id, 'day', day, 'au', active_users)), '[]') "
            "FROM usage_daily"))
        users = sum(u["au"] for u in usage if u["id"] in ids and
                    t - datetime.timedelta(days=7) < datetime.date.fromisoformat(u["day"]) <= t)
        n = len(rows)
        return {
            "total_clients": n,
            "average_health_score": float(round1(D(sum(r["h"] for r in rows)) / n)) if n else None,
            "total_arr": float(sum(D(r["v"]) for r in rows if r["v"] is not None)),
            "total_active_users": float(round1(D(users) / 7)),
            "lifecycle_breakdown": {s: sum(1 for r in rows if r["stage"] == s) for s in STAGES},
            "tier_breakdown": {x: sum(1 for r in rows if r["tier"] == x) for x in TIERS},
        }

    def assert_consistent(self, what):
        self.assertEqual(self.q("SELECT count(*) FROM csmcp.portfolio_check()"), "0",
                         "%s: maintained totals differ from the base tables:\n%s"
                         % (what, self.q("SELECT * FROM csmcp.portfolio_check()")))
        for f in ({}, {"tier_filter": "professional"}, {"lifecycle_stage_filter": "active"},
                  {"tier_filter": "starter", "lifecycle_stage_filter": "churned"}):
            out = self.s.call_ok("list_clients", dict(f, limit=5))
            exp = self.scratch(f.get("tier_filter"), f.get("lifecycle_stage_filter"))
            self.assertEqual(out["summary"], exp, "%s, filters %s" % (what, f))
            self.assertEqual(out["pagination"]["total_count"], exp["total_clients"])
            general = self.s.call_ok("list_clients", dict(f, limit=5, health_score_min=0))
            self.assertEqual(general["summary"], out["summary"], "%s: general path, %s" % (what, f))
            self.assertEqual(general["clients"], out["clients"], "%s: page, %s" % (what, f))

    def summary(self, **f):
        return self.s.call_ok("list_clients", dict(f, limit=1))["summary"]

    def client_with_usage(self, k=0):
        """A seeded account with usage in the last 7 days and an active contract."""
        return self.q(
            "SELECT a.client_id FROM accounts a JOIN contracts c ON c.client_id = a.client_id "
            "AND c.status = 'active' WHERE EXISTS (SELECT 1 FROM usage_daily u WHERE "
            "u.client_id = a.client_id AND u.day > current_date - 7 AND u.active_users > 0) "
            "AND a.lifecycle_stage <> 'churned' ORDER BY a.client_id OFFSET %d LIMIT 1" % k)

    # ------------------------------------------------------------ tests (run in name order)

    def test_1_after_migrate_and_seed(self):
        self.assertEqual(self.summary()["total_clients"], 30)
        self.assert_consistent("seed")

    def test_1b_page_order_every_sort(self):
        """The page query (index order since 0014) sorts as documented, checked against a sort
        done here: ties by client_id in the sort's direction, missing values last both ways;
        pages of 7 put end to end give the whole list."""
        rows = json.loads(self.q(
            "SELECT json_agg(json_build_object('id', a.client_id, 'name', a.client_name, 'tier', a.tier, "
            "'h', " + EFF + ", 'v', c.contract_value::text, 'end', c.end_date)) "
            "FROM accounts a LEFT JOIN contracts c ON c.client_id = a.client_id AND c.status = 'active'"))
        key = {"client_id": lambda r: (), "client_name": lambda r: (r["name"].encode(),),
               "health_score": lambda r: (r["h"],),
               "contract_value": lambda r: (D(r["v"]) if r["v"] is not None else None,),
               "days_until_renewal": lambda r: (r["end"],)}
        for sort_by, k in key.items():
            for order in ("asc", "desc"):
                for tier in (None, "standard"):
                    sel = [r for r in rows if tier is None or r["tier"] == tier]
                    have = [r for r in sel if None not in k(r)]
                    have.sort(key=lambda r: k(r) + (r["id"].encode(),), reverse=(order == "desc"))
                    none = sorted((r for r in sel if None in k(r)), key=lambda r: r["id"].encode(),
                                  reverse=(order == "desc"))
                    exp = [r["id"] for r in have + none]
                    args = {"sort_by": sort_by, "sort_order": order, "limit": 1000}
                    if tier:
                        args["tier_filter"] = tier
                    got = [c["client_id"] for c in self.s.call_ok("list_clients", args)["clients"]]
                    self.assertEqual(got, exp, args)
                    paged = []
                    for off in range(0, len(exp) + 7, 7):
                        out = self.s.call_ok("list_clients", dict(args, limit=7, offset=off))
                        paged += [c["client_id"] for c in out["clients"]]
                        self.assertEqual(out["pagination"]["has_more"], off + 7 < len(exp))
                    self.assertEqual(paged, exp, args)

    def test_2_register_client(self):
        before = self.summary()
        out = self.s.call_ok("register_client", {
            "client_name": "Portfolio Corp", "company_name": "Portfolio Co", "tier": "enterprise",
            "contract_value": 123456.78})
        after = self.summary()
        self.assertEqual(after["total_clients"], before["total_clients"] + 1)
        self.assertAlmostEqual(after["total_arr"], before["total_arr"] + 123456.78, places=2)
        self.assertEqual(after["tier_breakdown"]["enterprise"],
                         before["tier_breakdown"]["enterprise"] + 1)
        self.__class__.registered = out["client_id"]
        self.assert_consistent("register_client")

    def test_3_update_client_info(self):
        c = self.client_with_usage()
        tier = self.q("SELECT tier FROM accounts WHERE client_id = '%s'" % c)
        new = "starter" if tier != "starter" else "enterprise"
        before_new = self.summary(tier_filter=new)
        self.s.call_ok("update_client_info", {"client_id": c, "updates": {"tier": new}})
        after_new = self.summary(tier_filter=new)
        # The account moved with its ARR and its last 7 days of users.
        self.assertEqual(after_new["total_clients"], before_new["total_clients"] + 1)
        self.assertGreater(after_new["total_active_users"], before_new["total_active_users"])
        self.assertGreater(after_new["total_arr"], before_new["total_arr"])
        self.assert_consistent("update tier")
        self.s.call_ok("update_client_info", {"client_id": c, "updates": {"contract_value": 777.5}})
        self.assert_consistent("update contract_value")
        self.s.call_ok("update_client_info", {"client_id": c, "updates": {"csm_assigned": "x@y.io"}})
        self.assert_consistent("update csm (no summary field)")
        before = self.summary(lifecycle_stage_filter="churned")
        self.s.call_ok("update_client_info", {"client_id": c, "updates": {"status": "churned"}})
        self.assertEqual(self.summary(lifecycle_stage_filter="churned")["total_clients"],
                         before["total_clients"] + 1)
        self.assert_consistent("update status churned")

    def test_4_health_and_lifecycle(self):
        for k in range(3):
            self.s.call_ok("calculate_health_score", {"client_id": self.client_with_usage(k)})
        self.s.call_ok("calculate_health_score", {"client_id": self.registered})
        self.assert_consistent("calculate_health_score")
        c = self.client_with_usage(4)
        stage = self.q("SELECT lifecycle_stage FROM accounts WHERE client_id = '%s'" % c)
        new = "renewal" if stage != "renewal" else "expansion"
        self.s.call_ok("manage_lifecycle_stages", {"client_id": c, "new_stage": new})
        self.assert_consistent("manage_lifecycle_stages")

    def test_5_ingest_and_the_7_day_window(self):
        c = self.client_with_usage(1)
        t = today()
        now = datetime.datetime.now(datetime.timezone.utc)
        edge_out = datetime.datetime.combine(t - datetime.timedelta(days=7), datetime.time(23, 59, 59))
        edge_in = datetime.datetime.combine(t - datetime.timedelta(days=6), datetime.time(0, 0, 0))
        tomorrow = datetime.datetime.combine(t + datetime.timedelta(days=1), datetime.time(0, 0, 1))
        ts = {"old": edge_out, "in": edge_in, "now": now.replace(tzinfo=None)}
        if tomorrow < now.replace(tzinfo=None) + datetime.timedelta(hours=23):
            ts["tomorrow"] = tomorrow  # accepted up to now + 1 day
        base = self.summary()["total_active_users"]
        seen = 0
        for k, when in ts.items():
            ev = [{"event_id": "pf-%s-%s-%d" % (k, c, i), "client_id": c,
                   "occurred_at": when.isoformat() + "Z", "user_id": "pf-new-%s-%d" % (k, i),
                   "feature": "dashboard"} for i in range(7)]
            self.s.call_ok("ingest_usage_events", {"events": ev})
            if k in ("in", "now"):
                seen += 7
            # 7 new users in the window add exactly 7 / 7 = 1.0 to the 7-day average.
            self.assertAlmostEqual(self.summary()["total_active_users"], base + seen / 7, places=6,
                                   msg="after events of %s" % k)
            self.assert_consistent("ingest %s" % k)
        # Same users again: active users unchanged, events counted.
        ev = [{"event_id": "pf-again-%d" % i, "client_id": c,
               "occurred_at": now.replace(tzinfo=None).isoformat() + "Z",
               "user_id": "pf-new-now-%d" % i, "feature": "dashboard"} for i in range(3)]
        self.s.call_ok("ingest_usage_events", {"events": ev})
        self.assertAlmostEqual(self.summary()["total_active_users"], base + seen / 7, places=6)
        self.assert_consistent("ingest known users")

    def test_6_import_usage(self):
        t = today()
        ids = self.q("SELECT string_agg(client_id, ' ' ORDER BY client_id) FROM accounts").split()
        rows = "\n".join(json.dumps({
            "event_id": "pf-imp-%d" % i, "client_id": ids[i % 5],
            "occurred_at": "%sT12:00:00+00:00" % (t - datetime.timedelta(days=i % 9)).isoformat(),
            "user": "pf-imp-u%d" % i, "feature": "reports"}) for i in range(40))
        path = os.path.join(self.tmp, "usage.jsonl")
        with open(path, "w") as f:
            f.write(rows + "\n")
        r = lib.ctl_db(self.url, "import", "usage", path)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("40 inserted", r.stdout)
        self.assert_consistent("csmcpctl import usage")

    def test_7_concurrent_writers(self):
        """Ingest, tier changes, stage changes and health calculations on the same accounts
        at once: the FOR SHARE lock keeps every usage row in its account's current group."""
        accts = [self.client_with_usage(k) for k in range(2, 5)]
        errors = []

        def worker(n):
            s = self.d.session()
            try:
                for i in range(12):
                    c = accts[(n + i) % len(accts)]
                    if n == 0:
                        s.call_ok("update_client_info", {"client_id": c, "updates": {
                            "tier": TIERS[i % 4]}})
                    elif n == 1:
                        s.call_ok("ingest_usage_events", {"events": [
                            {"event_id": "pf-cc-%d-%d" % (n, i), "client_id": c,
                             "occurred_at": datetime.datetime.now(datetime.timezone.utc)
                             .replace(tzinfo=None).isoformat() + "Z",
                             "user_id": "pf-cc-u%d" % i, "feature": "dashboard"}]})
                    elif n == 2:
                        s.call_ok("calculate_health_score", {"client_id": c})
                    else:
                        stage = self.q("SELECT lifecycle_stage FROM accounts WHERE client_id = "
                                       "'%s'" % c)
                        new = STAGES[(STAGES.index(stage) + 1) % len(STAGES)]
                        if new == "churned":
                            new = "expansion"
                        s.call_tool("manage_lifecycle_stages", {"client_id": c, "new_stage": new})
            except Exception as e:  # reported below, the thread must not die silently
                errors.append("%d: %r" % (n, e))
            finally:
                s.close()

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(120)
        self.assertEqual(errors, [])
        self.assertFalse(any(th.is_alive() for th in threads))
        self.assert_consistent("concurrent writers")

    def test_7b_group_change_races_usage_write(self):
        """Deterministic interleavings of a usage write and a change of the same account's
        tier, each held open for a second: the usage must end up in the account's final group
        whichever transaction starts first (this fails without the FOR SHARE in the triggers)."""
        c = self.client_with_usage(6)
        t = today().isoformat()

        def ingest(tag, hold):
            ev = json.dumps([{"event_id": "pf-race-%s" % tag, "client_id": c,
                              "occurred_at": t + "T00:00:01Z", "user_id": "pf-race-%s" % tag,
                              "feature": "dashboard"}])
            return ("BEGIN; SELECT csmcp.apply_usage_events('%s'::jsonb) IS NOT NULL; "
                    "SELECT pg_sleep(%s); COMMIT;" % (ev, hold))

        def retier(tier, hold):
            return ("BEGIN; UPDATE accounts SET tier = '%s' WHERE client_id = '%s'; "
                    "SELECT pg_sleep(%s); COMMIT;" % (tier, c, hold))

        for i, (first, second) in enumerate([(ingest("a", 1), retier("enterprise", 0)),
                                             (retier("starter", 1), ingest("b", 0)),
                                             (ingest("c", 1), retier("professional", 0)),
                                             (retier("standard", 1), ingest("d", 0))]):
            errs = []

            def run(sql):
                try:
                    lib.psql(self.url, sql, timeout=30)
                except Exception as e:  # reported below
                    errs.append(repr(e))
            th = threading.Thread(target=run, args=(first,))
            th.start()
            time.sleep(0.3)
            run(second)
            th.join(30)
            self.assertEqual(errs, [])
            self.assert_consistent("race %d" % i)

    def test_8_deletes_compaction_truncate_reseed(self):
        c = self.client_with_usage(5)
        self.q("SELECT csmcp.gdpr_erase(jsonb_build_object('client_id', '%s'), 'test')" % c)
        self.assertEqual(self.q("SELECT count(*) FROM accounts WHERE client_id = '%s'" % c), "0")
        self.assert_consistent("GDPR erasure")
        c = self.client_with_usage(5)
        self.q("DELETE FROM accounts WHERE client_id = '%s'" % c)  # cascades to usage, contracts
        self.assert_consistent("cascading delete")
        self.assertGreater(int(self.q("SELECT count(*) FROM portfolio_counts")), 0)
        self.q("SELECT csmcp.portfolio_compact()")
        self.assertEqual(self.q("SELECT count(*) FROM (SELECT tier, lifecycle_stage FROM "
                                "portfolio_counts GROUP BY 1, 2 HAVING count(*) > 1) x"), "0")
        self.assertEqual(self.q("SELECT count(*) FROM (SELECT day, tier, lifecycle_stage FROM "
                                "portfolio_usage GROUP BY 1, 2, 3 HAVING count(*) > 1) x"), "0")
        self.assert_consistent("compaction")
        self.q("TRUNCATE usage_daily")
        self.assertEqual(self.summary()["total_active_users"], 0)
        self.assert_consistent("TRUNCATE usage_daily")
        r = lib.ctl_db(self.url, "seed", "--accounts", "12")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assert_consistent("re-seed")
