"""Every shell command in docs/operations/*.md is exercised.

Each ```sh block is preceded by `<!-- exercised-by: ... -->` (see docs/operations/README.md):
- `runbook`: run here, as written, by bash -euo pipefail, against a live csmcpd (test
  PostgreSQL and Redis) and a scratch PostgreSQL for the backup and database commands; only
  host paths and addresses are rewritten to the test's own and `sudo -u csmcp` is dropped;
- test ids (`module.Class.test_method`): must exist in tests/integration;
  `package:module.Class.test_method`: in tests/package (run by the package section of CI);
- `scripts/dev`: the csmcpctl subcommand must be run by scripts/dev.
"""
import glob
import importlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

import lib
import ops_util as ou

DOCS = os.path.join(ou.ROOT, "docs", "operations")
BLOCK = re.compile(r"(?:<!-- exercised-by: ([^>]*?) -->\n)?```sh\n(.*?)```", re.S)


def blocks():
    """(file, exercised-by or None, text) for every sh block, in document order."""
    out = []
    for path in sorted(glob.glob(os.path.join(DOCS, "*.md"))):
        with open(path) as f:
            for m in BLOCK.finditer(f.read()):
                out.append((os.path.basename(path), m.group(1), m.group(2)))
    return out


class TestRunbookAnnotations(unittest.TestCase):
    def test_runbooks_exist(self):
        for name in ("deploy", "upgrade", "rollback", "incident-response", "troubleshooting",
                     "backup-and-restore"):
            self.assertTrue(os.path.isfile(os.path.join(DOCS, name + ".md")), name)

    def test_every_block_names_what_exercises_it(self):
        bl = blocks()
        self.assertGreater(len(bl), 15)
        with open(os.path.join(ou.ROOT, "scripts", "dev")) as f:
            dev = f.read()
        for fname, by, text in bl:
            self.assertIsNotNone(by, "%s: a sh block without <!-- exercised-by: -->:\n%s"
                                 % (fname, text))
            for ref in [r.strip() for r in by.split(",")]:
                if ref == "runbook":
                    continue
                if ref == "scripts/dev":
                    for m in re.finditer(r"csmcpctl -c \S+ ([a-z]+(?: [a-z]+)?)", text):
                        self.assertIn("ctl " + m.group(1), dev,
                                      "%s: scripts/dev does not run csmcpctl %s"
                                      % (fname, m.group(1)))
                    continue
                if ref.startswith("package:"):  # a test in tests/package (root, dpkg: CI's package section)
                    ref = ref[len("package:"):]
                    pkgdir = os.path.join(ou.ROOT, "tests", "package")
                    if pkgdir not in sys.path:
                        sys.path.append(pkgdir)
                mod, cls, meth = ref.split(".")
                klass = getattr(importlib.import_module(mod), cls, None)
                self.assertIsNotNone(klass, "%s: no test class %s" % (fname, ref))
                self.assertTrue(callable(getattr(klass, meth, None)),
                                "%s: no test %s" % (fname, ref))


class TestRunbookCommands(unittest.TestCase):
    """Runs every `exercised-by: runbook` block, file by file, in document order."""

    @classmethod
    def setUpClass(cls):
        for t in ("curl", "psql"):
            lib.need_tool(t, {"curl": "curl"}.get(t, "postgresql-client"))
        cls.pg = lib.ScratchPostgres(55444).start()
        cls.tmp = cls.d = None
        try:
            cls.set_up_rest()
        except BaseException:
            # tearDownClass does not run when setUpClass fails: stop what was started.
            cls.tearDownClass()
            raise

    @classmethod
    def set_up_rest(cls):
        cls.pg.psql("CREATE ROLE csmcp LOGIN CREATEDB; CREATE DATABASE csmcp OWNER csmcp;")
        subprocess.run([os.path.join(cls.pg.bindir, "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1",
                        cls.pg.url("csmcp", user="csmcp"), "-c",
                        "CREATE TABLE accounts (id serial PRIMARY KEY, name text);"
                        "INSERT INTO accounts (name) SELECT 'a' || g FROM generate_series(1, 500) g;"],
                       check=True, capture_output=True, timeout=60)
        cls.tmp = tempfile.mkdtemp(prefix="csmcp-ops-runbook-")
        cls.bin = os.path.join(cls.tmp, "bin")
        os.makedirs(cls.bin)
        for name, target in (("csmcpd", lib.CSMCPD), ("csmcpctl", lib.CSMCPCTL),
                             ("csmcp-backup", os.path.join(ou.ROOT, "scripts", "backup")),
                             ("csmcp-restore", os.path.join(ou.ROOT, "scripts", "restore"))):
            os.symlink(target, os.path.join(cls.bin, name))
        cls.backups = os.path.join(cls.tmp, "backups")
        cls.d = lib.Csmcpd(workers=2)
        cls.d.start()
        shutil.copy(cls.d.conf_path, cls.d.conf_path + ".prev")

    @classmethod
    def tearDownClass(cls):
        if cls.d is not None:
            cls.d.stop()
        cls.pg.stop()
        if cls.tmp:
            shutil.rmtree(cls.tmp, ignore_errors=True)

    def rewrite(self, text):
        d = self.d
        subs = [
            ("sudo -u csmcp ", ""),
            ("/usr/share/doc/csmcp/examples/", os.path.join(ou.ROOT, "etc") + "/"),
            ("/run/csmcp/control.sock", d.socket),
            ("/etc/csmcp/", d.dir + "/"),
            ("/var/lib/csmcp/backups", self.backups),
            ("127.0.0.1:9464", "127.0.0.1:%d" % d.admin_port),
            ("db.internal:5432", "127.0.0.1:%d" % self.pg.port),
        ]
        for a, b in subs:
            text = text.replace(a, b)
        return text

    def run_file(self, fname):
        todo = [(by, t) for f, by, t in blocks() if f == fname and by and "runbook" in by]
        self.assertTrue(todo, "%s has no runnable block" % fname)
        env = dict(self.d.env)
        env["PATH"] = "%s:%s:%s" % (self.bin, self.pg.bindir, env.get("PATH", "/usr/bin:/bin"))
        env["CSMCP_BACKUP_DATABASE_URL"] = self.pg.url("csmcp", user="csmcp")
        for k in ("CSMCP_DATABASE_URL", "CSMCP_BACKUP_S3_URI", "CSMCP_RESTORE_DATABASE_URL"):
            env.pop(k, None)
        for _, text in todo:
            script = self.rewrite(text)
            r = subprocess.run(["bash", "-euo", "pipefail", "-c", script], env=env,
                               capture_output=True, text=True, timeout=300)
            self.assertEqual(r.returncode, 0, "%s block failed:\n%s\n--- stdout\n%s--- stderr\n%s"
                             % (fname, script, r.stdout[-3000:], r.stderr[-3000:]))
        return len(todo)

    def test_deploy(self):
        self.run_file("deploy.md")
        with open(os.path.join(self.d.dir, "credentials", "session_secret")) as f:
            self.assertRegex(f.read(), r"^[0-9a-f]{64}$")
        self.assertEqual(self.pg.psql("SELECT rolconnlimit FROM pg_roles WHERE rolname = 'csmcp_owner'").strip(),
                         "110")

    def test_upgrade(self):
        self.run_file("upgrade.md")

    def test_rollback(self):
        self.run_file("rollback.md")

    def test_incident_response(self):
        self.run_file("incident-response.md")

    def test_troubleshooting(self):
        self.run_file("troubleshooting.md")

    def test_backup_and_restore(self):
        self.run_file("backup-and-restore.md")
        rows = self.pg.psql("SELECT count(*) FROM accounts", db="csmcp_restored").strip()
        self.assertEqual(rows, "500")


if __name__ == "__main__":
    unittest.main()
