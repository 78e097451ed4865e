"""csmcpctl migrate with db/functions (docs/data.md "Code in the database"): a new database and
one migrated at the layout before db/functions (commit 49b645f: functions inside the
migrations) end in the same schema (pg_dump --schema-only) and the same schema_functions
checksums; the rewritten migrations are re-recorded, not re-run or warned about; a second
migrate applies nothing; a changed function file is re-applied alone; a failing file rolls the
whole functions transaction back; seed_demo calls every csmcp.seed_part_<category>."""
import json
import os
import re
import shutil
import subprocess
import tempfile

import data_util as du
import lib

OLD_LAYOUT = "49b645f"  # main before db/functions: every function defined in a migration
FUNCTIONS = os.path.join(lib.ROOT, "db", "functions")
MIGRATIONS = os.path.join(lib.ROOT, "db", "migrations")


def git(*args):
    return subprocess.run(["git", "-C", lib.ROOT] + list(args), capture_output=True, text=True,
                          check=True).stdout


class DataFunctionsTest(lib.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pg = du.PrivatePostgres().start()
        cls.tmp = tempfile.mkdtemp(prefix="csmcp-data-fn-")

    @classmethod
    def tearDownClass(cls):
        cls.pg.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def newdb(self, name):
        du.psql(self.pg.url("postgres"), "CREATE DATABASE %s" % name)
        return self.pg.url(name)

    def migrate(self, url, *args):
        r = du.ctl_db(url, "migrate", *args)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        return r

    def dump(self, url):
        r = subprocess.run([os.path.join(du.PGBIN, "pg_dump"), "--schema-only", "--no-owner",
                            url], capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        # pg_dump 15.x prints a random \restrict key on some builds; nothing else varies.
        return "\n".join(l for l in r.stdout.splitlines() if not l.startswith("\\restrict")
                         and not l.startswith("\\unrestrict"))

    def checksums(self, url):
        return du.psql(url, "SELECT string_agg(path || ' ' || checksum, E'\\n' ORDER BY path) "
                            "FROM schema_functions")

    def old_migrations(self):
        d = os.path.join(self.tmp, "old-migrations")
        if not os.path.isdir(d):
            os.makedirs(d)
            for name in git("ls-tree", "--name-only", OLD_LAYOUT, "db/migrations/").split():
                with open(os.path.join(d, os.path.basename(name)), "w") as f:
                    f.write(git("show", "%s:%s" % (OLD_LAYOUT, name)))
        return d

    def test_1_fresh_and_old_layout_converge(self):
        fresh = self.newdb("fn_fresh")
        r = self.migrate(fresh)
        n_files = sum(len([f for f in fs if f.endswith(".sql")])
                      for _, _, fs in os.walk(FUNCTIONS))
        self.assertIn("functions: %d applied, 0 unchanged" % n_files, r.stdout)
        self.assertNotIn("warning", r.stderr)

        # A database migrated by the old layout (functions inside the migrations), with data.
        old = self.newdb("fn_old")
        empty = tempfile.mkdtemp(dir=self.tmp)
        self.migrate(old, "--migrations", self.old_migrations(), "--functions", empty)
        self.assertEqual(du.psql(old, "SELECT count(*) FROM schema_functions"), "0")
        self.assertEqual(du.psql(old, "SELECT count(*) FROM pg_proc WHERE proname = "
                                      "'seed_demo_rows'"), "1")
        du.psql(old, "SELECT csmcp.seed_demo(5)")
        totals = du.psql(old, "SELECT sum(accounts), sum(arr) FROM portfolio_counts")

        r = self.migrate(old)
        rewritten = [l.split()[0] for l in open(os.path.join(MIGRATIONS, "REWRITTEN"))
                     if l.strip() and not l.startswith("#")]
        for v in sorted(set(rewritten)):
            self.assertRegex(r.stdout, r"re-recorded %s_\w+\.sql" % v)
        self.assertNotIn("warning", r.stderr)
        self.assertIn("functions: %d applied, 0 unchanged" % n_files, r.stdout)
        self.assertEqual(du.psql(old, "SELECT count(*) FROM pg_proc WHERE proname = "
                                      "'seed_demo_rows'"), "0")
        self.assertEqual(self.dump(old), self.dump(fresh))
        self.assertEqual(self.checksums(old), self.checksums(fresh))
        self.assertEqual(du.psql(old, "SELECT string_agg(version || checksum, ',' ORDER BY "
                                      "version) FROM schema_migrations"),
                         du.psql(fresh, "SELECT string_agg(version || checksum, ',' ORDER BY "
                                        "version) FROM schema_migrations"))
        # Data kept; the portfolio totals still agree with the base tables.
        self.assertEqual(du.psql(old, "SELECT sum(accounts), sum(arr) FROM portfolio_counts"),
                         totals)
        self.assertEqual(du.psql(old, "SELECT count(*) FROM csmcp.portfolio_check()"), "0")

        # Re-running is a no-op on both.
        for url in (fresh, old):
            r = self.migrate(url)
            self.assertIn("migrate: 0 applied", r.stdout)
            self.assertIn("functions: 0 applied, %d unchanged" % n_files, r.stdout)
            self.assertNotIn("re-recorded", r.stdout)
            self.assertEqual(r.stderr, "")

        # Every file is idempotent: applying all of them again changes nothing.
        before = self.dump(fresh)
        du.psql(fresh, "DELETE FROM schema_functions")
        r = self.migrate(fresh)
        self.assertIn("functions: %d applied, 0 unchanged" % n_files, r.stdout)
        self.assertEqual(self.dump(fresh), before)

    def test_2_changed_file_reapplied_alone(self):
        url = self.newdb("fn_change")
        fdir = os.path.join(self.tmp, "functions-copy")
        shutil.copytree(FUNCTIONS, fdir)
        self.migrate(url, "--functions", fdir)
        before = du.psql(url, "SELECT path || ' ' || applied_at FROM schema_functions "
                              "WHERE path <> 'common/risk_level.sql' ORDER BY path")
        path = os.path.join(fdir, "common", "risk_level.sql")
        with open(path) as f:
            text = f.read()
        self.assertIn("WHEN score >= 80 THEN 'low'", text)
        with open(path, "w") as f:
            f.write(text.replace("WHEN score >= 80 THEN 'low'", "WHEN score >= 81 THEN 'low'"))
        r = self.migrate(url, "--functions", fdir)
        n = len(before.splitlines()) + 1
        self.assertIn("applied functions/common/risk_level.sql", r.stdout)
        self.assertIn("functions: 1 applied, %d unchanged" % (n - 1), r.stdout)
        self.assertEqual(du.psql(url, "SELECT csmcp.risk_level(80)"), "medium")
        self.assertEqual(du.psql(url, "SELECT path || ' ' || applied_at FROM schema_functions "
                                      "WHERE path <> 'common/risk_level.sql' ORDER BY path"),
                         before)

        # A failing file: nothing of the functions transaction stays, the error names the file.
        with open(path, "w") as f:
            f.write(text.replace("WHEN score >= 80 THEN 'low'", "WHEN score >= 79 THEN 'low'"))
        bad = os.path.join(fdir, "zz_bad.sql")
        with open(bad, "w") as f:
            f.write("SELECT no_such_function();\n")
        r = du.ctl_db(url, "migrate", "--functions", fdir)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("functions/zz_bad.sql failed", r.stderr)
        self.assertEqual(du.psql(url, "SELECT csmcp.risk_level(79)"), "medium")
        # A body that does not compile is caught at migrate, not at the first call, although
        # the files are applied with check_function_bodies off.
        with open(bad, "w") as f:
            f.write("CREATE OR REPLACE FUNCTION csmcp.zz_broken() RETURNS int LANGUAGE plpgsql "
                    "AS $$ BEGIN RETURN 1 +; END $$;\n")
        r = du.ctl_db(url, "migrate", "--functions", fdir)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("csmcp.zz_broken() does not compile: ERROR:  syntax error", r.stderr)
        self.assertEqual(du.psql(url, "SELECT to_regproc('csmcp.zz_broken') IS NULL"), "t")
        self.assertEqual(du.psql(url, "SELECT csmcp.risk_level(79)"), "medium")
        # A file may not end the transaction (the run is one transaction).
        with open(bad, "w") as f:
            f.write("COMMIT;\n")
        r = du.ctl_db(url, "migrate", "--functions", fdir)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("functions/zz_bad.sql ended the transaction", r.stderr)
        os.unlink(bad)
        self.migrate(url, "--functions", fdir)
        self.assertEqual(du.psql(url, "SELECT csmcp.risk_level(79)"), "low")

        # A file that disappears is forgotten (its function stays until a migration drops it).
        os.unlink(path)
        r = self.migrate(url, "--functions", fdir)
        self.assertIn("1 forgotten", r.stdout)
        self.assertEqual(du.psql(url, "SELECT count(*) FROM schema_functions WHERE path = "
                                      "'common/risk_level.sql'"), "0")

    def test_3_unlisted_change_still_warns(self):
        url = self.newdb("fn_warn")
        d = os.path.join(self.tmp, "mig-warn")
        shutil.copytree(MIGRATIONS, d)
        self.migrate(url, "--migrations", d)
        with open(os.path.join(d, "0009_indexes.sql"), "a") as f:
            f.write("-- edited after it was applied\n")
        r = self.migrate(url, "--migrations", d)
        self.assertIn("warning: 0009_indexes.sql changed since it was applied", r.stderr)
        self.assertNotIn("re-recorded", r.stdout)

    def test_4_seed_parts(self):
        url = self.newdb("fn_seed")
        fdir = os.path.join(self.tmp, "functions-seed")
        shutil.copytree(FUNCTIONS, fdir)
        # Two throw-away parts (z-names sort after any real category); a function with another
        # signature is not a part.
        with open(os.path.join(fdir, "seed", "zz_test_parts.sql"), "w") as f:
            f.write("""
CREATE OR REPLACE FUNCTION csmcp.seed_part_zz_b(n integer) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO activity_log (client_id, actor, action, entity)
    SELECT client_id, 'seed', 'zz_b ' || (SELECT count(*) FROM activity_log WHERE actor = 'seed'
                                          AND action LIKE 'zz\\_%'), 'probe'
    FROM accounts WHERE client_id = 'demo_00001';
    RETURN jsonb_build_object('rows', 1, 'n', n);
END $$;
CREATE OR REPLACE FUNCTION csmcp.seed_part_zz_a(n integer) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO activity_log (client_id, actor, action, entity)
    SELECT client_id, 'seed', 'zz_a ' || (SELECT count(*) FROM activity_log WHERE actor = 'seed'
                                          AND action LIKE 'zz\\_%'), 'probe'
    FROM accounts WHERE client_id = 'demo_00001';
    RETURN jsonb_build_object('rows', 1);
END $$;
CREATE OR REPLACE FUNCTION csmcp.seed_part_zz_c(n text) RETURNS jsonb
LANGUAGE sql AS $$ SELECT '{"wrong": "signature"}'::jsonb $$;
""")
        self.migrate(url, "--functions", fdir)
        r = du.ctl_db(url, "seed", "--accounts", "4")
        self.assertEqual(r.returncode, 0, r.stderr)
        summary = json.loads(r.stdout.split("seed: ", 1)[1])
        self.assertEqual(summary["accounts"], 4)
        self.assertEqual(summary["zz_a"], {"rows": 1})
        self.assertEqual(summary["zz_b"], {"rows": 1, "n": 4})
        self.assertNotIn("zz_c", summary)
        # In name order: zz_a ran first.
        self.assertEqual(du.psql(url, "SELECT string_agg(action, ',' ORDER BY activity_id) FROM "
                                      "activity_log WHERE action LIKE 'zz\\_%'"), "zz_a 0,zz_b 1")
        self.assertEqual(du.psql(url, "SELECT count(*) FROM csmcp.portfolio_check()"), "0")

    def test_5_installed_csmcpctl_uses_installed_dirs(self):
        """`meson install` (into a DESTDIR) puts migrations and functions under
        DATADIR/csmcp; the installed csmcpctl uses those, not the source tree's."""
        dest = os.path.join(self.tmp, "destdir")
        r = subprocess.run(["meson", "install", "-C", lib.BUILD, "--destdir", dest, "--quiet"],
                           capture_output=True, text=True, timeout=300)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        ctl = [os.path.join(root, "csmcpctl") for root, _, files in os.walk(dest)
               if "csmcpctl" in files]
        self.assertEqual(len(ctl), 1, ctl)
        share = os.path.normpath(os.path.join(os.path.dirname(ctl[0]), "..", "share", "csmcp"))
        self.assertTrue(os.path.isfile(os.path.join(share, "functions", "core",
                                                    "list_clients.sql")))
        self.assertTrue(os.path.isfile(os.path.join(share, "migrations", "REWRITTEN")))
        # Only the installed copy has this file: seeing its function proves which dir was used.
        with open(os.path.join(share, "functions", "zz_installed_probe.sql"), "w") as f:
            f.write("CREATE OR REPLACE FUNCTION csmcp.installed_probe() RETURNS int "
                    "LANGUAGE sql AS $$ SELECT 1 $$;\n")
        url = self.newdb("fn_installed")
        env = dict(os.environ, CSMCP_DATABASE_URL=url)
        env.pop("CSMCP_MIGRATIONS_DIR", None)
        env.pop("CSMCP_FUNCTIONS_DIR", None)
        r = subprocess.run([ctl[0], "migrate"], env=env, capture_output=True, text=True,
                           timeout=300)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertRegex(r.stdout, r"migrate: \d+ applied, 0 already applied \(%s\)"
                         % os.path.join(os.path.dirname(ctl[0]), "..", "share", "csmcp",
                                        "migrations").replace(".", r"\."))
        self.assertEqual(du.psql(url, "SELECT csmcp.installed_probe()"), "1")
        self.assertEqual(du.psql(url, "SELECT count(*) FROM schema_functions WHERE path = "
                                      "'zz_installed_probe.sql'"), "1")

    def test_6_code_only_in_function_files(self):
        """No migration defines a function, procedure, view or trigger; every definition in
        db/functions can be run twice (CREATE OR REPLACE); no function file calls random()."""
        code = re.compile(r"\bCREATE\s+(OR\s+REPLACE\s+)?(FUNCTION|PROCEDURE|VIEW|TRIGGER)\b",
                          re.I)
        for name in sorted(os.listdir(MIGRATIONS)):
            if name.endswith(".sql"):
                with open(os.path.join(MIGRATIONS, name)) as f:
                    text = re.sub(r"--[^\n]*", "", f.read())
                self.assertIsNone(code.search(text),
                                  "%s defines code: put it in db/functions/ (docs/data.md)" % name)
        for root, _, files in os.walk(FUNCTIONS):
            for name in files:
                if name.endswith(".sql"):
                    path = os.path.join(root, name)
                    with open(path) as f:
                        text = re.sub(r"--[^\n]*", "", f.read())
                    for m in code.finditer(text):
                        self.assertTrue(m.group(1), "%s: CREATE %s without OR REPLACE"
                                        % (os.path.relpath(path, FUNCTIONS), m.group(2)))
                    # Real data only, reproducible demo data: csmcp.seed_rand, never random().
                    self.assertIsNone(re.search(r"\brandom\s*\(", text),
                                      "%s calls random()" % os.path.relpath(path, FUNCTIONS))
