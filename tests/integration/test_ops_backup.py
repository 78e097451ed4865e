"""Backup and restore (scripts/backup, scripts/restore) against a scratch PostgreSQL.

The round trip: backup -> DROP DATABASE -> restore -> identical data, where "identical" is
checked independently of the scripts' own manifest: per table, the row count and the md5 of
all rows in a fixed order (md5(string_agg(row::text ORDER BY row::text))). Plus: --verify in a
scratch database, a corrupted file refused, a tampered manifest detected, consistency under
concurrent writes (the dump and the manifest share one snapshot), retention by count and age,
S3 upload through the aws CLI, and the Prometheus textfile. The demo data set
(`csmcpctl migrate` + `seed`) is backed up too, and its time and size printed.
"""
import os
import shutil
import subprocess
import tempfile
import threading
import time
import unittest

import lib
import ops_util as ou

BACKUP = os.path.join(ou.ROOT, "scripts", "backup")
RESTORE = os.path.join(ou.ROOT, "scripts", "restore")

SCHEMA = r"""
CREATE EXTENSION IF NOT EXISTS pgcrypto;
CREATE TABLE accounts (
  id bigserial PRIMARY KEY, name text NOT NULL, arr numeric(14,2), health float8,
  created_at timestamptz NOT NULL DEFAULT '2026-01-01 00:00:00+00', tags text[], meta jsonb,
  logo bytea);
CREATE SCHEMA analytics;
CREATE TABLE analytics.usage_daily (
  account_id bigint REFERENCES accounts(id), day date, events int, PRIMARY KEY (account_id, day));
CREATE TABLE notes (id serial PRIMARY KEY, body text);
CREATE TABLE empty_table (x int);
INSERT INTO accounts (name, arr, health, created_at, tags, meta, logo)
SELECT 'Account ' || g || CASE WHEN g % 7 = 0 THEN ' — Ünïcødé ✓' ELSE '' END,
       g * 1234.56, CASE WHEN g % 11 = 0 THEN NULL ELSE g / 7.0 END,
       '2026-01-01 00:00:00+00'::timestamptz + g * interval '37 minutes',
       ARRAY['tier-' || (g % 3), 'region-' || (g % 5)],
       jsonb_build_object('g', g, 'nested', jsonb_build_object('ok', g % 2 = 0)),
       decode(md5(g::text), 'hex')
FROM generate_series(1, 3000) g;
INSERT INTO analytics.usage_daily
SELECT 1 + (g % 3000), DATE '2026-01-01' + (g / 3000), (g * 31) % 977
FROM generate_series(0, 29999) g;
INSERT INTO notes (body) SELECT repeat('note ', g % 50) FROM generate_series(1, 500) g;
"""

FINGERPRINT = r"""
SET TimeZone = 'UTC';
SELECT format('SELECT %L, count(*), md5(coalesce(string_agg(t::text, E''\n'' ORDER BY t::text), '''')) FROM %I.%I t',
              n.nspname || '.' || c.relname, n.nspname, c.relname)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\_%'
ORDER BY 1
\gexec
"""


class BackupCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        for t in ("pg_dump", "pg_restore", "psql"):
            lib.need_tool(t, "postgresql-client")
        cls.pg = lib.ScratchPostgres(55434).start()
        cls.tmp = tempfile.mkdtemp(prefix="csmcp-ops-backup-")
        cls.env = dict(os.environ)
        cls.env["PATH"] = cls.pg.bindir + ":" + cls.env.get("PATH", "/usr/bin:/bin")
        for k in ("CSMCP_BACKUP_DATABASE_URL", "CSMCP_DATABASE_URL", "CSMCP_BACKUP_S3_URI",
                  "CSMCP_RESTORE_DATABASE_URL", "CSMCP_BACKUP_TEXTFILE", "PGDATABASE"):
            cls.env.pop(k, None)

    @classmethod
    def tearDownClass(cls):
        cls.pg.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def fresh_db(self, name):
        self.pg.psql('DROP DATABASE IF EXISTS "%s" WITH (FORCE); CREATE DATABASE "%s";'
                     % (name, name))
        return self.pg.url(name)

    def fingerprint(self, db):
        out = self.pg.psql(FINGERPRINT, db=db)
        return [tuple(l.split("|")) for l in out.splitlines() if l]

    def backup(self, url, bdir, *args, env=None, check=True):
        e = dict(self.env, **(env or {}))
        t0 = time.monotonic()
        r = subprocess.run([BACKUP, "--url", url, "--dir", bdir] + list(args), env=e,
                           capture_output=True, text=True, timeout=900)
        dt = time.monotonic() - t0
        if check:
            self.assertEqual(r.returncode, 0, r.stderr)
        return r, dt

    def restore(self, *args, env=None):
        return subprocess.run([RESTORE] + list(args), env=dict(self.env, **(env or {})),
                              capture_output=True, text=True, timeout=900)


class TestBackupRoundTrip(BackupCase):
    def test_round_trip_identical_data(self):
        url = self.fresh_db("rt")
        self.pg.psql(SCHEMA, db="rt")
        before = self.fingerprint("rt")
        self.assertEqual(len(before), 4)
        self.assertIn(("public.accounts", "3000"), [r[:2] for r in before])
        max_id = int(self.pg.psql("SELECT max(id) FROM accounts", db="rt"))

        bdir = os.path.join(self.tmp, "rt")
        r, dt = self.backup(url, bdir)
        dump = r.stdout.strip().splitlines()[-1]
        self.assertTrue(dump.endswith(".dump") and os.path.isfile(dump), r.stdout)
        base = dump[:-5]
        for ext in (".manifest", ".sha256"):
            self.assertTrue(os.path.isfile(base + ext), ext)
        self.assertEqual(os.stat(dump).st_mode & 0o077, 0, "backup must not be world-readable")
        self.assertEqual([f for f in os.listdir(bdir) if "partial" in f or f.startswith(".work")],
                         [])

        self.pg.psql('DROP DATABASE rt WITH (FORCE)')
        self.fresh_db("rt")
        rr = self.restore("--url", url, dump)
        self.assertEqual(rr.returncode, 0, rr.stderr)
        self.assertIn("identical", rr.stderr)
        self.assertEqual(self.fingerprint("rt"), before)
        # Sequences were restored too: a new row continues after the old maximum.
        new_id = int(self.pg.psql("INSERT INTO accounts (name) VALUES ('new') RETURNING id",
                                  db="rt"))
        self.assertGreater(new_id, max_id)
        print("    round trip: %d bytes, backup %.2fs" % (os.path.getsize(dump), dt))

    def test_restore_refuses_non_empty_target_and_clean_replaces(self):
        url = self.fresh_db("ne")
        self.pg.psql(SCHEMA, db="ne")
        before = self.fingerprint("ne")
        r, _ = self.backup(url, os.path.join(self.tmp, "ne"))
        dump = r.stdout.strip().splitlines()[-1]
        rr = self.restore("--url", url, dump)
        self.assertNotEqual(rr.returncode, 0)
        self.assertIn("already has", rr.stderr)
        self.pg.psql("DELETE FROM notes WHERE id % 2 = 0; UPDATE accounts SET name = 'x'", db="ne")
        self.assertNotEqual(self.fingerprint("ne"), before)
        rr = self.restore("--url", url, "--clean", dump)
        self.assertEqual(rr.returncode, 0, rr.stderr)
        self.assertEqual(self.fingerprint("ne"), before)

    def test_verify_corruption_and_tampering(self):
        url = self.fresh_db("vf")
        self.pg.psql(SCHEMA, db="vf")
        bdir = os.path.join(self.tmp, "vf")
        r, _ = self.backup(url, bdir)
        dump = r.stdout.strip().splitlines()[-1]
        dbs_before = self.pg.psql("SELECT count(*) FROM pg_database")

        rv = self.restore("--verify", "--url", url, dump)
        self.assertEqual(rv.returncode, 0, rv.stderr)
        self.assertIn("counts and checksums identical", rv.stderr)
        self.assertEqual(self.pg.psql("SELECT count(*) FROM pg_database"), dbs_before,
                         "scratch database left behind")
        rl = self.restore("--verify", "--url", url, "--latest", bdir)
        self.assertEqual(rl.returncode, 0, rl.stderr)

        # One flipped byte in a copy: refused before touching any database.
        bad = os.path.join(self.tmp, "corrupt")
        os.makedirs(bad)
        for ext in (".dump", ".manifest", ".sha256"):
            shutil.copy(dump[:-5] + ext, bad)
        cdump = os.path.join(bad, os.path.basename(dump))
        with open(cdump, "r+b") as f:
            f.seek(os.path.getsize(cdump) // 2)
            b = f.read(1)
            f.seek(-1, 1)
            f.write(bytes([b[0] ^ 0xFF]))
        rc = self.restore("--verify", "--url", url, cdump)
        self.assertNotEqual(rc.returncode, 0)
        self.assertIn("checksum mismatch", rc.stderr)

        # A manifest that disagrees with the data (re-signed, so only the comparison catches it).
        shutil.copy(dump, cdump)
        man = cdump[:-5] + ".manifest"
        with open(man) as f:
            lines = f.read().splitlines()
        lines = [l.replace("public.notes\t500\t", "public.notes\t499\t") for l in lines]
        with open(man, "w") as f:
            f.write("\n".join(lines) + "\n")
        subprocess.run("sha256sum %s %s > %s" % (
            os.path.basename(man), os.path.basename(cdump), os.path.basename(cdump[:-5]) + ".sha256"),
            shell=True, cwd=bad, check=True)
        rt = self.restore("--verify", "--url", url, cdump)
        self.assertNotEqual(rt.returncode, 0)
        self.assertIn("DIFFERENCES", rt.stderr)
        self.assertIn("public.notes", rt.stderr)

    def test_consistent_under_concurrent_writes(self):
        """Rows inserted while pg_dump runs are in neither the dump nor the manifest."""
        url = self.fresh_db("cw")
        self.pg.psql(SCHEMA, db="cw")
        self.pg.psql("INSERT INTO notes (body) SELECT repeat('x', 2000) FROM generate_series(1, 20000)",
                     db="cw")
        stop = threading.Event()
        inserted = [0]

        def writer():
            p = subprocess.Popen([os.path.join(self.pg.bindir, "psql"), "-X", "-q", url],
                                 stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL, text=True)
            deadline = time.monotonic() + 60
            while not stop.is_set() and time.monotonic() < deadline:
                p.stdin.write("INSERT INTO notes (body) VALUES ('during backup');\n"
                              "UPDATE accounts SET health = random() WHERE id = 1 + (random() * 2999)::int;\n")
                p.stdin.flush()
                inserted[0] += 1
                time.sleep(0.002)
            p.stdin.close()
            p.wait(30)

        t = threading.Thread(target=writer)
        t.start()
        try:
            time.sleep(0.3)
            r, _ = self.backup(url, os.path.join(self.tmp, "cw"))
        finally:
            stop.set()
            t.join(70)
        self.assertGreater(inserted[0], 10, "the writer did not run during the backup")
        dump = r.stdout.strip().splitlines()[-1]
        rv = self.restore("--verify", "--url", url, dump)
        self.assertEqual(rv.returncode, 0, rv.stderr)

    def test_retention_by_count_and_age(self):
        url = self.fresh_db("ret")
        self.pg.psql("CREATE TABLE t (x int); INSERT INTO t VALUES (1)", db="ret")
        bdir = os.path.join(self.tmp, "ret")
        os.makedirs(bdir)
        now = time.time()
        # Five old backups, newest first: 1, 2, 3, 10 and 40 days old.
        names = []
        for i, days in enumerate([1, 2, 3, 10, 40]):
            n = "csmcp-202601%02dT000000Z" % (20 - i)
            names.append(n)
            for ext in (".dump", ".manifest", ".sha256"):
                p = os.path.join(bdir, n + ext)
                open(p, "w").close()
                os.utime(p, (now - days * 86400, now - days * 86400))
        other = os.path.join(bdir, "keep-me.txt")
        open(other, "w").close()
        # Leftovers of a killed run.
        os.makedirs(os.path.join(bdir, ".work.AbC123"))
        open(os.path.join(bdir, "csmcp-20260101T000000Z.dump.partial"), "w").close()
        r, _ = self.backup(url, bdir, "--keep", "4", "--max-age-days", "7")
        new = os.path.basename(r.stdout.strip().splitlines()[-1])[:-5]
        left = sorted(f for f in os.listdir(bdir) if f.endswith(".dump"))
        # Kept: the new one and those within 7 days and within the newest 4.
        self.assertEqual(left, sorted([new + ".dump"] + [n + ".dump" for n in names[:3]]))
        self.assertTrue(os.path.exists(other), "retention must touch only its own files")
        self.assertEqual([f for f in os.listdir(bdir) if "work" in f or "partial" in f], [])
        self.assertFalse(os.path.exists(os.path.join(bdir, names[4] + ".manifest")))
        # --keep 1 keeps exactly the newest.
        self.backup(url, bdir, "--keep", "1")
        self.assertEqual(len([f for f in os.listdir(bdir) if f.endswith(".dump")]), 1)

    def test_s3_upload_and_textfile(self):
        url = self.fresh_db("s3")
        self.pg.psql("CREATE TABLE t (x int); INSERT INTO t SELECT generate_series(1, 10)",
                     db="s3")
        fake = os.path.join(self.tmp, "fakebin")
        os.makedirs(fake, exist_ok=True)
        log = os.path.join(self.tmp, "aws.log")
        with open(os.path.join(fake, "aws"), "w") as f:
            f.write('#!/bin/sh\necho "$@" >> %s\n[ -f "$4" ] || exit 3\n' % log)
        os.chmod(os.path.join(fake, "aws"), 0o755)
        tdir = os.path.join(self.tmp, "textfile")
        os.makedirs(tdir)
        textfile = os.path.join(tdir, "csmcp_backup.prom")
        env = {"PATH": fake + ":" + self.env["PATH"],
               "CSMCP_BACKUP_S3_URI": "s3://bucket/csmcp/", "CSMCP_BACKUP_TEXTFILE": textfile}
        r, _ = self.backup(url, os.path.join(self.tmp, "s3"), env=env)
        dump = os.path.basename(r.stdout.strip().splitlines()[-1])
        with open(log) as f:
            calls = f.read().splitlines()
        self.assertEqual(len(calls), 3, calls)
        for c, ext in zip(calls, (".dump", ".manifest", ".sha256")):
            self.assertTrue(c.startswith("s3 cp --only-show-errors "), c)
            self.assertTrue(c.endswith("s3://bucket/csmcp/" + dump[:-5] + ext), c)
        # A failing upload fails the backup (exit 1), loudly.
        with open(os.path.join(fake, "aws"), "w") as f:
            f.write("#!/bin/sh\necho 'upload failed: AccessDenied' >&2\nexit 1\n")
        r2, _ = self.backup(url, os.path.join(self.tmp, "s3"), env=env, check=False)
        self.assertNotEqual(r2.returncode, 0)
        self.assertIn("upload", r2.stderr)
        # The textfile parses with the real Prometheus parser, and holds this backup's figures.
        with open(textfile) as f:
            text = f.read()
        pc = subprocess.run([ou.promtool(), "check", "metrics"], input=text,
                            capture_output=True, text=True, timeout=60)
        self.assertEqual(pc.returncode, 0, pc.stdout + pc.stderr)
        vals = dict(l.split() for l in text.splitlines() if l and not l.startswith("#"))
        self.assertAlmostEqual(float(vals["csmcp_backup_last_success_timestamp_seconds"]),
                               time.time(), delta=120)
        self.assertEqual(int(vals["csmcp_backup_last_rows"]), 10)

    def test_parallel_restore(self):
        url = self.fresh_db("par")
        self.pg.psql(SCHEMA, db="par")
        before = self.fingerprint("par")
        r, _ = self.backup(url, os.path.join(self.tmp, "par"))
        dump = r.stdout.strip().splitlines()[-1]
        url2 = self.fresh_db("par2")
        rr = self.restore("--url", url2, "--jobs", "3", dump)
        self.assertEqual(rr.returncode, 0, rr.stderr)
        self.assertEqual(self.fingerprint("par2"), before)

    def test_bad_settings_fail_fast(self):
        r, _ = self.backup(self.pg.url("postgres"), os.path.join(self.tmp, "bad"), "--keep", "0",
                           check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("--keep", r.stderr)
        r, _ = self.backup("postgresql://postgres@127.0.0.1:1/nope", os.path.join(self.tmp, "bad"),
                           check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertEqual([f for f in os.listdir(os.path.join(self.tmp, "bad"))
                          if not f.startswith(".lock")], [], "nothing left behind on failure")


class TestBackupCredential(unittest.TestCase):
    """The password reaches pg_dump/psql/pg_restore from $CREDENTIALS_DIRECTORY/database_password
    (systemd LoadCredential=), never from the command line or the unit's environment."""

    def test_password_from_credentials_directory(self):
        pg = lib.ScratchPostgres(55464, hba_first=[
            "host all pwuser 127.0.0.1/32 scram-sha-256"]).start()
        tmp = tempfile.mkdtemp(prefix="csmcp-ops-cred-")
        try:
            pg.psql("CREATE ROLE pwuser LOGIN CREATEDB PASSWORD 's3cret-Pa55'; "
                    "CREATE DATABASE pw OWNER pwuser;")
            env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "CSMCP_"))}
            env["PATH"] = pg.bindir + ":" + env.get("PATH", "/usr/bin:/bin")
            env["PGPASSFILE"] = os.path.join(tmp, "none")
            url = "postgresql://pwuser@127.0.0.1:%d/pw" % pg.port
            subprocess.run([os.path.join(pg.bindir, "psql"), "-X", "-q", url, "-c",
                            "CREATE TABLE t (x int); INSERT INTO t VALUES (1), (2)"],
                           env=dict(env, PGPASSWORD="s3cret-Pa55"), check=True,
                           capture_output=True, timeout=60)
            bdir = os.path.join(tmp, "b")
            # Without the credential: authentication fails, nothing is left behind.
            r = subprocess.run([BACKUP, "--url", url, "--dir", bdir], env=env,
                               capture_output=True, text=True, timeout=120)
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("password", r.stderr)
            creds = os.path.join(tmp, "creds")
            os.makedirs(creds)
            with open(os.path.join(creds, "database_password"), "w") as f:
                f.write("s3cret-Pa55")
            env["CREDENTIALS_DIRECTORY"] = creds
            r = subprocess.run([BACKUP, "--url", url, "--dir", bdir, "--verify"], env=env,
                               capture_output=True, text=True, timeout=300)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertNotIn("s3cret", r.stdout + r.stderr, "the password must never be printed")
            self.assertIn("identical", r.stderr)
            # A password inside the URL works too, and is masked in every message.
            del env["CREDENTIALS_DIRECTORY"]
            r = subprocess.run([BACKUP, "--url", url.replace("pwuser@", "pwuser:s3cret-Pa55@"),
                                "--dir", bdir], env=env, capture_output=True, text=True,
                               timeout=120)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("pwuser:***@", r.stderr)
            self.assertNotIn("s3cret", r.stdout + r.stderr)
        finally:
            pg.stop()
            shutil.rmtree(tmp, ignore_errors=True)


class TestBackupDemoData(BackupCase):
    """The demo data set from `csmcpctl migrate` + `csmcpctl seed`: time and size."""

    def test_demo_data_backup_verify(self):
        ctl = lib.CSMCPCTL
        self.assertTrue(os.access(ctl, os.X_OK), "%s not built" % ctl)
        self.pg.psql("CREATE ROLE csmcp LOGIN CREATEDB")
        self.pg.psql("CREATE DATABASE csmcp OWNER csmcp")
        url = self.pg.url("csmcp", user="csmcp")
        conf = os.path.join(self.tmp, "demo.conf")
        lib.write_conf(conf, {"database": {"url": url}, "control": {"socket": os.path.join(self.tmp, "c.sock")}})
        env = dict(self.env, CSMCP_DATABASE_URL=url)
        accounts = os.environ.get("CSMCP_TEST_SEED_ACCOUNTS", "200")
        for args in (["migrate"], ["seed", "--accounts", accounts]):
            r = subprocess.run([ctl, "-c", conf] + args, env=env, capture_output=True,
                               text=True, timeout=600)
            self.assertEqual(r.returncode, 0, "csmcpctl %s: %s%s" % (args[0], r.stdout, r.stderr))
        before = self.fingerprint("csmcp")
        rows = sum(int(r[1]) for r in before)
        self.assertGreater(rows, 1000, "seed produced too little data to be a demo set")
        r, dt = self.backup(url, os.path.join(self.tmp, "demo"))
        dump = r.stdout.strip().splitlines()[-1]
        size = os.path.getsize(dump)
        t0 = time.monotonic()
        self.pg.psql("DROP DATABASE csmcp WITH (FORCE); CREATE DATABASE csmcp OWNER csmcp")
        rr = self.restore("--url", url, dump)
        rt = time.monotonic() - t0
        self.assertEqual(rr.returncode, 0, rr.stderr)
        self.assertEqual(self.fingerprint("csmcp"), before)
        print("    demo data (%s accounts): %d tables, %d rows; backup %.2fs, %d bytes (%.1f MiB);"
              " drop+restore+compare %.2fs" % (accounts, len(before), rows, dt, size,
                                               size / 1048576.0, rt))


if __name__ == "__main__":
    unittest.main()
