"""The Debian package: lintian, install/purge, units, shipped config, migration compatibility
declarations, and the upgrade N -> N+1 and one-command rollback under keep-alive load.

Needs root and dpkg (the CI machine), the .deb built by `scripts/dev package` (CSMCP_PKG_DEB or
the newest dist/csmcp_*.deb), the test PostgreSQL and Redis (`scripts/dev test` exports
CSMCP_PG_ADMIN_URL and CSMCP_TEST_REDIS_URL). The machine has no booted systemd: csmcpd runs as
a plain background process, and the maintainer scripts take their "no systemd" path (reload
through the control socket), which is what they do in a container.

Run: python3 tests/package/test_package.py [-v] [TestClass]
"""
import gzip
import os
import re
import shutil
import subprocess
import time
import unittest

import pkg_util as pu
from pkg_util import lib

UNITS = ["csmcp.service", "csmcp.socket", "csmcp-backup.service", "csmcp-backup.timer"]


def migrations_in(directory):
    return sorted(f for f in os.listdir(directory) if re.match(r"^[0-9]{4}_.*\.sql$", f))


class TestCompatDeclarations(unittest.TestCase):
    def test_every_migration_declares_compatibility(self):
        d = os.path.join(pu.ROOT, "db", "migrations")
        lines = {}
        with open(os.path.join(d, "COMPAT")) as f:
            for ln in f:
                ln = ln.split("#", 1)[0].strip()
                if not ln:
                    continue
                v, status = ln.split()[:2]
                self.assertIn(status, ("compatible", "incompatible", "baseline"), ln)
                self.assertNotIn(v, lines, "COMPAT: %s declared twice" % v)
                lines[v] = status
        missing = [m for m in migrations_in(d) if m[:4] not in lines]
        self.assertEqual(missing, [], "migrations without a line in db/migrations/COMPAT "
                         "(compatible | incompatible, see the file's header)")
        stale = sorted(set(lines) - {m[:4] for m in migrations_in(d)})
        self.assertEqual(stale, [], "COMPAT lines without a migration file")


class TestLintian(unittest.TestCase):
    def test_lintian_reports_no_errors(self):
        lib.need_tool("lintian", "lintian")
        deb = pu.deb_under_test()
        r = pu.run(["lintian", "--no-tag-display-limit", deb], timeout=300)
        out = r.stdout + r.stderr
        errors = [l for l in out.splitlines() if l.startswith("E:")]
        warnings = [l for l in out.splitlines() if l.startswith("W:")]
        print("\nlintian %s: %d errors, %d warnings" % (os.path.basename(deb), len(errors),
                                                       len(warnings)))
        for w in warnings:
            print("  " + w)
        self.assertEqual(errors, [], out)
        self.assertEqual(r.returncode, 0, out)


class TestInstallPurge(unittest.TestCase):
    def test_install_verify_purge(self):
        deb = pu.deb_under_test()
        ver = pu.deb_field(deb, "Version")
        pu.purge_installed()
        try:
            r = pu.run(["dpkg", "-i", deb], check=True)
            self.assertIn("installed and enabled, not started", r.stdout)
            # Release layout and the links through `current`.
            self.assertEqual(os.readlink("/usr/lib/csmcp/current"), "releases/" + ver)
            self.assertEqual(os.path.realpath("/usr/sbin/csmcpd"),
                             "/usr/lib/csmcp/releases/%s/sbin/csmcpd" % ver)
            self.assertEqual(pu.run(["csmcp-release", "current"], check=True).stdout.strip(), ver)
            self.assertTrue(os.path.isfile("/usr/share/csmcp/migrations/COMPAT"))
            self.assertEqual(migrations_in("/usr/share/csmcp/migrations"),
                             migrations_in(os.path.join(pu.ROOT, "db", "migrations")))
            # Service user, state directory, conffiles, enabled (not started) units.
            self.assertEqual(pu.run(["getent", "passwd", "csmcp"]).returncode, 0)
            st = os.stat("/var/lib/csmcp")
            self.assertEqual(oct(st.st_mode & 0o777), "0o750")
            conff = pu.run(["dpkg-query", "-W", "-f=${Conffiles}", "csmcp"], check=True).stdout
            self.assertIn("/etc/csmcp/csmcp.conf", conff)
            for link in ("/etc/systemd/system/multi-user.target.wants/csmcp.service",
                         "/etc/systemd/system/sockets.target.wants/csmcp.socket",
                         "/etc/systemd/system/timers.target.wants/csmcp-backup.timer"):
                self.assertTrue(os.path.islink(link), link)
            # systemd accepts the installed units (no booted systemd needed).
            lib.need_tool("systemd-analyze", "systemd")
            r = pu.run(["systemd-analyze", "verify", "--man=no", "--generators=no"] +
                       ["/lib/systemd/system/" + u for u in UNITS])
            out = (r.stdout + r.stderr).strip()
            self.assertEqual(r.returncode, 0, out)
            self.assertEqual(out, "", "systemd-analyze verify printed warnings")
            # The shipped configuration passes csmcpd -t; the installed binaries run.
            r = pu.run(["/usr/sbin/csmcpd", "-t", "-c", "/etc/csmcp/csmcp.conf"])
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertIn("configuration OK", r.stdout + r.stderr)
            self.assertEqual(pu.run(["csmcpctl", "-V"], check=True).stdout.strip(),
                             "csmcpctl " + pu.run(["/usr/sbin/csmcpd", "--version"],
                                                  check=True).stdout.split()[-1])
            # Man pages from the key table: every key of --print-keys is in csmcpd(8) (read
            # from the installed file: no man-db needed).
            with gzip.open("/usr/share/man/man8/csmcpd.8.gz", "rt") as f:
                man = f.read()
            self.assertIn('.TH CSMCPD 8', man)
            keys = re.findall(r"^\| `([a-z_]+\.[a-z_]+)`", pu.run(
                ["/usr/sbin/csmcpd", "--print-keys"], check=True).stdout, re.M)
            self.assertGreater(len(keys), 40)
            for k in keys:
                self.assertIn("\\fB%s\\fR" % k, man)
            for page in ("csmcpctl", "csmcp-release", "csmcp-backup", "csmcp-restore"):
                self.assertTrue(os.path.isfile("/usr/share/man/man8/%s.8.gz" % page), page)
        finally:
            r = pu.run(["dpkg", "--purge", "csmcp"])
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertFalse(os.path.exists("/usr/lib/csmcp"))
        self.assertFalse(os.path.exists("/etc/csmcp/csmcp.conf"))
        self.assertFalse(os.path.lexists("/usr/sbin/csmcpd"))
        self.assertFalse(os.path.lexists("/etc/systemd/system/multi-user.target.wants/csmcp.service"))
        self.assertNotEqual(pu.run(["dpkg", "-s", "csmcp"]).returncode, 0)


class TestUpgradeRollback(unittest.TestCase):
    """Version N (the .deb under test) serving under keep-alive load, upgraded with dpkg to N+1
    (the same build plus one migration, tests/package/next), then `csmcp-release rollback`:
    zero failed requests in both phases, release N's SDK workflow passes on N+1's schema."""

    DB = "csmcp_pkg_upgrade"

    @classmethod
    def setUpClass(cls):
        cls.tmp = pu.tmpdir("csmcp-pkg-upgrade-")
        cls.deb_n = pu.deb_under_test()
        cls.ver_n = pu.deb_field(cls.deb_n, "Version")
        cls.ver_next = cls.ver_n + "+t1"
        t0 = time.monotonic()
        r = pu.run([os.path.join(pu.ROOT, "scripts", "package"), "--version", cls.ver_next,
                    "--overlay", os.path.join(pu.HERE, "next"), "--out", cls.tmp], timeout=900)
        if r.returncode != 0:
            raise AssertionError("building N+1 failed:\n" + r.stdout + r.stderr)
        cls.deb_next = r.stdout.strip().splitlines()[-1]
        print("\nN+1 package %s built in %.1f s" % (os.path.basename(cls.deb_next),
                                                     time.monotonic() - t0))
        cls.server = None

    @classmethod
    def tearDownClass(cls):
        if cls.server is not None:
            cls.server.stop()
        pu.run(["dpkg", "--purge", "csmcp"])
        pu.drop_database(cls.DB)
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def phase_under_load(self, what, action, port):
        load = pu.Load(port, sessions=4, write_every=5, max_seconds=240).start()
        lib.wait_for(lambda: load.ok >= 50, 30, what="load running before " + what)
        t0 = time.monotonic()
        r = action()
        took = time.monotonic() - t0
        n_at_end = load.ok
        lib.wait_for(lambda: load.ok >= n_at_end + 50, 30, what="load going on after " + what)
        load.stop()
        print("%s: %.1f s; load: %s" % (what, took, load.summary()))
        return r, load

    def test_upgrade_then_rollback_under_load(self):
        pu.purge_installed()
        pu.run(["dpkg", "-i", self.deb_n], check=True)
        port, admin = lib.free_port(), lib.free_port()
        url = pu.fresh_database(self.DB)
        conf = "/etc/csmcp/csmcp.conf"
        os.makedirs("/run/csmcp", exist_ok=True)
        pu.write_conf(conf, port, admin, "/run/csmcp/control.sock", url, pu.redis_url(7),
                      pu.secret_file(self.tmp))
        pu.run(["csmcpctl", "-c", conf, "migrate"], check=True)
        srv = type(self).server = pu.Server("/usr/sbin/csmcpd", conf, admin,
                                            os.path.join(self.tmp, "csmcpd.log")).start()
        exes = srv.worker_exes()
        self.assertTrue(exes and all("/releases/%s/" % self.ver_n in e for e in exes), exes)

        # Data written by version N.
        ok, out = pu.sdk_workflow(port)
        self.assertTrue(ok, out)
        clients_before = int(lib.psql(url, "SELECT count(*) FROM accounts"))

        # Upgrade with dpkg: postinst migrates (0999), switches `current`, reloads --wait.
        r, load = self.phase_under_load("dpkg -i N+1", lambda: pu.run(
            ["dpkg", "-i", "--force-confold", self.deb_next], timeout=300), port)
        out = r.stdout + r.stderr
        self.assertEqual(r.returncode, 0, out)
        self.assertIn("applied 0999_pkgtest_next.sql", out)
        self.assertIn("systemd is not running", out)
        self.assertEqual(load.failed, 0, load.summary())
        self.assertGreater(load.ok, 100)
        self.assertEqual(pu.run(["csmcp-release", "current"], check=True).stdout.strip(),
                         self.ver_next)
        self.assertEqual(sorted(os.listdir("/usr/lib/csmcp/releases")),
                         sorted([self.ver_n, self.ver_next]))
        exes = srv.worker_exes()
        self.assertTrue(exes and all("/releases/%s/" % self.ver_next in e for e in exes), exes)
        self.assertEqual(lib.psql(url, "SELECT count(*) FROM schema_migrations WHERE version = '0999'"), "1")
        self.assertEqual(srv.proc.poll(), None, "csmcpd was restarted or died")

        # One-command rollback: check COMPAT (0999 compatible), csmcpd -t with N, switch,
        # reload --wait, N's migrate re-applies N's functions.
        r, load = self.phase_under_load("csmcp-release rollback", lambda: pu.run(
            ["csmcp-release", "rollback"], timeout=300), port)
        out = r.stdout + r.stderr
        self.assertEqual(r.returncode, 0, out)
        self.assertIn("migration 0999_pkgtest_next.sql: backward compatible", out)
        self.assertIn("rolled back to %s" % self.ver_n, out)
        self.assertEqual(load.failed, 0, load.summary())
        self.assertGreater(load.ok, 100)
        self.assertEqual(pu.run(["csmcp-release", "current"], check=True).stdout.strip(),
                         self.ver_n)
        exes = srv.worker_exes()
        self.assertTrue(exes and all("/releases/%s/" % self.ver_n in e for e in exes), exes)
        # The claim of COMPAT, proven: release N on N+1's schema (0999 stays applied).
        self.assertEqual(lib.psql(url, "SELECT count(*) FROM schema_migrations WHERE version = '0999'"), "1")
        ok, out = pu.sdk_workflow(port)
        self.assertTrue(ok, "release N's SDK workflow on the N+1 schema:\n" + out)
        self.assertGreater(int(lib.psql(url, "SELECT count(*) FROM accounts")), clients_before)
        self.assertEqual(srv.proc.poll(), None, "csmcpd was restarted or died")
        srv.stop()
        type(self).server = None
        self.assertEqual(srv.proc.returncode, 0, srv.tail())
        bad = [l for l in srv.tail(400).splitlines() if "killed by signal" in l]
        self.assertEqual(bad, [])

    def test_rollback_refuses_an_incompatible_migration(self):
        """A tree of its own (--root): N and N+1 unpacked, N+1 active, 0999 declared
        incompatible (then undeclared): rollback refuses, names the migration, switches nothing."""
        root = os.path.join(self.tmp, "tree")
        release = os.path.join(pu.ROOT, "scripts", "release")
        for deb in (self.deb_n, self.deb_next):
            pu.run([release, "--root", root, "unpack", deb], check=True)
        base = os.path.join(root, "usr", "lib", "csmcp")
        os.symlink("releases/" + self.ver_next, os.path.join(base, "current"))
        compat = os.path.join(base, "releases", self.ver_next, "share", "csmcp", "migrations", "COMPAT")
        with open(compat) as f:
            text = f.read()
        for new, expect in (
                ("0999 incompatible  # drops column accounts.segment still read by N",
                 "declared incompatible:  drops column accounts.segment still read by N"),
                ("", "undeclared: 0999_pkgtest_next.sql has no line in migrations/COMPAT")):
            with open(compat, "w") as f:
                f.write(re.sub(r"^0999 .*$", new, text, flags=re.M))
            r = pu.run([release, "--root", root, "rollback"])
            out = r.stdout + r.stderr
            self.assertEqual(r.returncode, 1, out)
            self.assertIn("migration 0999_pkgtest_next.sql is not backward compatible", out)
            self.assertIn(expect, out)
            self.assertIn("refusing to switch from %s to %s" % (self.ver_next, self.ver_n), out)
            self.assertEqual(os.readlink(os.path.join(base, "current")),
                             "releases/" + self.ver_next)
            r = pu.run([release, "--root", root, "check", self.ver_n])
            self.assertEqual(r.returncode, 1, r.stderr)


if __name__ == "__main__":
    unittest.main()
