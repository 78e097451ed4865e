"""csmcpctl migrate | seed | import against a private PostgreSQL cluster: migrations are
idempotent and recorded, seeding is deterministic, an import with any bad row reports every bad
row (FILE:LINE) and imports nothing, a good import is idempotent."""
import json
import os
import tempfile

import data_util as du
import lib


class DataCtlTest(lib.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pg = lib.ScratchPostgres(databases=["csmcp"]).start()
        cls.url = cls.pg.url("csmcp")
        cls.tmp = tempfile.mkdtemp(prefix="csmcp-data-ctl-")

    @classmethod
    def tearDownClass(cls):
        cls.pg.stop()

    def ctl(self, *args):
        return lib.ctl_db(self.url, *args)

    def write(self, name, text):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def q(self, sql):
        return lib.psql(self.url, sql)

    def test_1_migrate_idempotent(self):
        files = sorted(f for f in os.listdir(os.path.join(lib.ROOT, "db", "migrations"))
                       if f.endswith(".sql"))
        r = self.ctl("migrate")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("%d applied, 0 already applied" % len(files), r.stdout)
        self.assertEqual(self.q("SELECT count(*) FROM schema_migrations"), str(len(files)))
        r = self.ctl("migrate")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("0 applied, %d already applied" % len(files), r.stdout)
        # A failing migration is rolled back and not recorded; the earlier ones stay.
        d = tempfile.mkdtemp(prefix="csmcp-mig-")
        with open(os.path.join(d, "0001_ok.sql"), "w") as f:
            f.write("CREATE TABLE mig_probe (x int);")
        with open(os.path.join(d, "0002_bad.sql"), "w") as f:
            f.write("CREATE TABLE mig_probe2 (x int); SELECT no_such_function();")
        pg2 = "mig_" + du.prefix()
        lib.psql(self.pg.url("postgres"), "CREATE DATABASE %s" % pg2)
        r = lib.ctl_db(self.pg.url(pg2), "migrate", "--migrations", d)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("0002_bad.sql failed", r.stderr)
        self.assertEqual(lib.psql(self.pg.url(pg2), "SELECT string_agg(version, ',') FROM "
                                 "schema_migrations"), "0001")
        self.assertEqual(lib.psql(self.pg.url(pg2), "SELECT to_regclass('mig_probe2') IS NULL"), "t")

    def test_2_seed_deterministic(self):
        r = self.ctl("seed", "--accounts", "30")
        self.assertEqual(r.returncode, 0, r.stderr)
        summary = json.loads(r.stdout.split("seed: ", 1)[1])
        self.assertEqual((summary["accounts"], summary["health_scores"]), (30, 30))
        snap = ("SELECT md5(string_agg(concat_ws('|', a.client_id, a.tier, a.industry, "
                "a.lifecycle_stage, c.contract_value, c.licensed_seats, a.health_score), ',' "
                "ORDER BY a.client_id)) || ':' || (SELECT md5(string_agg(concat_ws('|', client_id, "
                "day, active_users, events), ',' ORDER BY client_id, day)) FROM usage_daily) "
                "FROM accounts a LEFT JOIN contracts c ON c.client_id = a.client_id AND "
                "c.status IN ('active', 'cancelled')")
        first = self.q(snap)
        r = self.ctl("seed", "--accounts", "30")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.q(snap), first)
        # Realistic spread: several tiers, stages and usage shapes; 90 days of usage.
        self.assertGreaterEqual(int(self.q("SELECT count(DISTINCT tier) FROM accounts")), 3)
        self.assertGreaterEqual(int(self.q("SELECT count(DISTINCT lifecycle_stage) FROM accounts")), 3)
        self.assertEqual(self.q("SELECT max(csmcp.today() - day) FROM usage_daily"), "89")
        self.assertGreater(int(self.q("SELECT count(*) FROM nps_responses")), 10)
        self.assertGreater(int(self.q("SELECT count(*) FROM invoices")), 20)

    def test_3_import_bad_rows_nothing_imported(self):
        self.ctl("seed", "--accounts", "5")
        before = self.q("SELECT count(*) FROM usage_events")
        path = self.write("bad.csv",
                          "event_id,client_id,occurred_at,user_id,feature,quantity\n"
                          "imp-1,demo_00001,2026-01-01T10:00:00Z,u1,reports,1\n"
                          "imp-2,no_such_client,2026-01-01T10:00:00Z,u1,reports,1\n"
                          "imp-3,demo_00002,not-a-date,u2,reports,2\n"
                          "imp-4,demo_00002,2026-01-01T10:00:00Z,u2,reports,-5\n"
                          "imp-5,demo_00002,2026-01-01T10:00:00Z\n"
                          "imp-6,demo_00002,2026-01-01T10:00:00Z,u2,reports,+1\n")
        # dates relative to now so the "5 years" rule never trips this test
        r = self.ctl("import", "usage", path)
        self.assertEqual(r.returncode, 1)
        self.assertIn("bad.csv:3: client not found: no_such_client", r.stderr)
        self.assertIn("bad.csv:4: occurred_at must be an ISO 8601 timestamp", r.stderr)
        self.assertIn("bad.csv:5: quantity must be a number", r.stderr)
        self.assertIn("bad.csv:6: expected 6 fields, found 3", r.stderr)
        self.assertIn("bad.csv:7: quantity must be a number", r.stderr)  # "+1" is not JSON
        self.assertIn("5 invalid row(s)", r.stderr)
        self.assertIn("nothing imported", r.stderr)
        self.assertEqual(self.q("SELECT count(*) FROM usage_events"), before)

        bad_jsonl = self.write("bad.jsonl",
                               '{"client_id": "demo_00001", "score": 9}\n'
                               '\n'
                               '{"client_id": "demo_00001", "score": 11}\n'
                               'not json\n')
        r = self.ctl("import", "nps", bad_jsonl)
        self.assertEqual(r.returncode, 1)
        self.assertIn("bad.jsonl:3: score must be an integer from 0 to 10", r.stderr)
        self.assertIn("bad.jsonl:4: not a JSON object", r.stderr)

    def test_4_import_good_idempotent(self):
        self.ctl("seed", "--accounts", "5")
        rows = "\n".join(json.dumps({
            "event_id": "good-%d" % i, "client_id": "demo_0000%d" % (1 + i % 3),
            "occurred_at": "2026-01-0%dT12:00:00+00:00" % (1 + i % 5), "user": "u%d" % (i % 4),
            "feature": "imported_feature", "quantity": i}) for i in range(20))
        path = self.write("good.jsonl", rows + "\n")
        r = self.ctl("import", "usage", path)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("20 rows, 20 inserted", r.stdout)
        r = self.ctl("import", "usage", path)
        self.assertIn("0 inserted", r.stdout)
        self.assertIn("20 duplicates skipped", r.stdout)
        self.assertEqual(self.q("SELECT count(*) FROM usage_events WHERE event_id LIKE 'good-%'"),
                         "20")
        self.assertEqual(self.q("SELECT sum(events) FROM usage_feature_daily WHERE feature_id = "
                                "'imported_feature'"), "20")
        contacts = self.write("contacts.csv", 'client_id,name,email,title,role,is_primary\n'
                              'demo_00001,"Smith, Ann",ann@example.org,CTO,executive_sponsor,false\n'
                              'demo_00001,Bob,bob@example.org,,user,\n')
        r = self.ctl("import", "contacts", contacts)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("2 inserted", r.stdout)
        self.assertEqual(self.q("SELECT name FROM contacts WHERE email = 'ann@example.org'"),
                         "Smith, Ann")
        r = self.ctl("import", "contacts", contacts)
        self.assertIn("0 inserted, 2 updated", r.stdout)
        nps = self.write("nps.csv", "client_id,score,respondent_email,responded_at\n"
                         "demo_00002,9,a@b.io,2026-01-02T00:00:00Z\n"
                         "demo_00002,4,c@b.io,2026-01-03T00:00:00Z\n")
        r = self.ctl("import", "nps", nps)
        self.assertIn("2 inserted", r.stdout)
        r = self.ctl("import", "nps", nps)
        self.assertIn("0 inserted", r.stdout)
