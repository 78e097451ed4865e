"""Rolling deploy (scripts/deploy) over two csmcpd instances on 127.0.0.1 behind HAProxy, under
a keep-alive load through HAProxy: a good release reaches both hosts with 0 failed requests and
the migration applied once; a release that fails the smoke test, and one whose workers cannot
start, stop the roll-out at the first host, which is rolled back and put back into HAProxy.

Each instance is a tree of its own (csmcp-release --root: DIR/usr/lib/csmcp/releases, current,
DIR/etc/csmcp/csmcp.conf), sharing the database and Redis like hosts do. Needs haproxy, dpkg-deb,
the .deb under test and the test PostgreSQL/Redis (see pkg_util). ~2-3 minutes.

Run: python3 tests/package/test_deploy.py [-v]
"""
import os
import shutil
import subprocess
import time
import unittest

import pkg_util as pu
from pkg_util import lib

RELEASE = os.path.join(pu.ROOT, "scripts", "release")
DEPLOY = os.path.join(pu.ROOT, "scripts", "deploy")


class TestRollingDeploy(unittest.TestCase):
    DB = "csmcp_pkg_deploy"

    @classmethod
    def setUpClass(cls):
        lib.need_tool("haproxy", "haproxy")
        cls.tmp = pu.tmpdir("csmcp-pkg-deploy-")
        cls.hosts, cls.haproxy = [], None
        try:
            cls.set_up()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def build(cls, version, overlay):
        t0 = time.monotonic()
        r = pu.run([os.path.join(pu.ROOT, "scripts", "package"), "--version", version,
                    "--overlay", os.path.join(pu.HERE, overlay), "--out", cls.tmp], timeout=900)
        if r.returncode != 0:
            raise AssertionError("building %s failed:\n%s%s" % (version, r.stdout, r.stderr))
        print("built %s in %.1f s" % (version, time.monotonic() - t0))
        return r.stdout.strip().splitlines()[-1]

    @classmethod
    def set_up(cls):
        cls.deb_n = pu.deb_under_test()
        cls.ver_n = pu.deb_field(cls.deb_n, "Version")
        cls.ver_next = cls.ver_n + "+t1"
        cls.deb_next = cls.build(cls.ver_next, "next")
        cls.deb_bad_smoke = cls.build(cls.ver_n + "+t2", "broken-smoke")
        cls.deb_bad_worker = cls.build(cls.ver_n + "+t3", "broken-worker")
        cls.url = pu.fresh_database(cls.DB)
        secret = pu.secret_file(cls.tmp)
        for name in ("h1", "h2"):
            root = os.path.join(cls.tmp, name)
            pu.run([RELEASE, "--root", root, "unpack", cls.deb_n], check=True)
            base = os.path.join(root, "usr", "lib", "csmcp")
            os.symlink("releases/" + cls.ver_n, os.path.join(base, "current"))
            os.makedirs(os.path.join(root, "etc", "csmcp"))
            conf = os.path.join(root, "etc", "csmcp", "csmcp.conf")
            port, admin = lib.free_port(), lib.free_port()
            pu.write_conf(conf, port, admin, os.path.join(root, "control.sock"), cls.url,
                          pu.redis_url(8), secret,
                          worker_binary=os.path.join(base, "current", "libexec", "csmcp",
                                                     "csmcp-worker"))
            cls.hosts.append({"name": name, "root": root, "conf": conf, "port": port,
                              "admin": admin, "server": None})
        # Migrate once, with release N's csmcpctl (what the first deploy did).
        h1 = cls.hosts[0]
        pu.run([os.path.join(h1["root"], "usr", "lib", "csmcp", "current", "bin", "csmcpctl"),
                "-c", h1["conf"], "migrate"], check=True)
        for h in cls.hosts:
            h["server"] = pu.Server(os.path.join(h["root"], "usr", "lib", "csmcp", "current",
                                                 "sbin", "csmcpd"),
                                    h["conf"], h["admin"], os.path.join(h["root"], "csmcpd.log"))
            h["server"].start()
        # HAProxy in front, health check GET /ready on each admin port, runtime API socket.
        cls.hap_port = lib.free_port()
        cls.hap_sock = os.path.join(cls.tmp, "haproxy.sock")
        cfg = os.path.join(cls.tmp, "haproxy.cfg")
        with open(cfg, "w") as f:
            f.write("""global
    stats socket %s mode 600 level admin
    maxconn 1000
defaults
    mode http
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    timeout http-keep-alive 30s
    option http-keep-alive
frontend mcp
    bind 127.0.0.1:%d
    default_backend csmcp
backend csmcp
    balance roundrobin
    option httpchk GET /ready
    http-check expect status 200
    default-server inter 300ms fall 2 rise 1
""" % (cls.hap_sock, cls.hap_port))
            for h in cls.hosts:
                f.write("    server %s 127.0.0.1:%d check port %d\n"
                        % (h["name"], h["port"], h["admin"]))
        cls.hap_log = open(os.path.join(cls.tmp, "haproxy.log"), "wb")
        cls.haproxy = subprocess.Popen(["haproxy", "-db", "-f", cfg], stdout=cls.hap_log,
                                       stderr=subprocess.STDOUT, start_new_session=True)
        lib.wait_for(lambda: os.path.exists(cls.hap_sock), 10, what="haproxy socket")
        cls.hosts_file = os.path.join(cls.tmp, "hosts")
        with open(cls.hosts_file, "w") as f:
            f.write("# name mode target smoke-url\n")
            for h in cls.hosts:
                f.write("%s local %s http://127.0.0.1:%d/mcp\n" % (h["name"], h["root"], h["port"]))

        def all_up():
            out = pu.run(["python3", "-c", "import socket,sys;s=socket.socket(socket.AF_UNIX);"
                          "s.connect(sys.argv[1]);s.sendall(b'show stat\\n');"
                          "print(s.makefile().read())", cls.hap_sock]).stdout
            return sum(1 for l in out.splitlines() if l.startswith("csmcp,h") and ",UP," in l) == 2
        lib.wait_for(all_up, 20, interval=0.3, what="both servers UP in HAProxy")

    @classmethod
    def tearDownClass(cls):
        for h in cls.hosts:
            if h["server"] is not None:
                h["server"].stop()
        if cls.haproxy is not None:
            cls.haproxy.terminate()
            try:
                cls.haproxy.wait(10)
            except subprocess.TimeoutExpired:
                cls.haproxy.kill()
        pu.drop_database(cls.DB)
        if not os.environ.get("CSMCP_PKG_KEEP"):
            shutil.rmtree(cls.tmp, ignore_errors=True)

    def current(self, h):
        return pu.run([RELEASE, "--root", h["root"], "current"], check=True).stdout.strip()

    def deploy_under_load(self, deb):
        load = pu.Load(self.hap_port, sessions=4, write_every=5, max_seconds=300).start()
        lib.wait_for(lambda: load.ok >= 50, 30, what="load through HAProxy")
        t0 = time.monotonic()
        r = pu.run([DEPLOY, "--deb", deb, "--hosts", self.hosts_file, "--haproxy-socket",
                    self.hap_sock, "--drain-timeout", "10"], timeout=600)
        took = time.monotonic() - t0
        n = load.ok
        lib.wait_for(lambda: load.ok >= n + 50, 30, what="load after the deploy")
        load.stop()
        out = r.stdout + r.stderr
        print("\nscripts/deploy %s: exit %d in %.1f s; load through HAProxy: %s"
              % (os.path.basename(deb), r.returncode, took, load.summary()))
        return r.returncode, out, load

    def test_1_rolling_deploy_under_load(self):
        rc, out, load = self.deploy_under_load(self.deb_next)
        self.assertEqual(rc, 0, out)
        self.assertEqual(load.failed, 0, load.summary())
        self.assertGreater(load.ok, 200)
        for h in self.hosts:
            self.assertEqual(self.current(h), self.ver_next, out)
            exes = h["server"].worker_exes()
            self.assertTrue(exes and all("/releases/%s/" % self.ver_next in e for e in exes),
                            (h["name"], exes))
            self.assertIsNone(h["server"].proc.poll(), "csmcpd of %s restarted or died" % h["name"])
        # Migrated once: the first host applied 0999, the second ran no migrate.
        self.assertEqual(out.count("applied 0999_pkgtest_next.sql"), 1, out)
        self.assertEqual(out.count("migrate with release"), 1, out)
        self.assertIn("h1: drained", out)
        self.assertIn("h2: on %s, back in HAProxy" % self.ver_next, out)
        self.assertEqual(lib.psql(self.url, "SELECT count(*) FROM schema_migrations "
                                            "WHERE version = '0999'"), "1")

    def test_2_smoke_failure_stops_at_the_first_host(self):
        ver_bad = self.ver_n + "+t2"
        rc, out, load = self.deploy_under_load(self.deb_bad_smoke)
        self.assertEqual(rc, 1, out)
        self.assertIn("h1: smoke test FAILED; rolling h1 back to %s" % self.ver_next, out)
        self.assertIn("roll-out STOPPED at h1 (1/2)", out)
        self.assertIn("h1: back in HAProxy on %s" % self.ver_next, out)
        self.assertNotIn("h2:", out.split("roll-out STOPPED")[0].replace("h2: already", ""))
        h1, h2 = self.hosts
        self.assertEqual(self.current(h1), self.ver_next)
        self.assertEqual(self.current(h2), self.ver_next)
        self.assertFalse(os.path.exists(os.path.join(h2["root"], "usr", "lib", "csmcp",
                                                     "releases", ver_bad)),
                         "h2 got the broken release")
        for h in self.hosts:
            exes = h["server"].worker_exes()
            self.assertTrue(exes and all("/releases/%s/" % self.ver_next in e for e in exes),
                            (h["name"], exes))
        # The rollback gave the database the previous release's function back.
        ok, sout = pu.sdk_workflow(h1["port"])
        self.assertTrue(ok, sout)
        self.assertEqual(load.failed, 0, load.summary())

    def test_3_worker_that_cannot_start_stops_at_the_first_host(self):
        rc, out, load = self.deploy_under_load(self.deb_bad_worker)
        self.assertEqual(rc, 1, out)
        self.assertIn("h1: activate (migrate or reload --wait) FAILED", out)
        self.assertIn("roll-out STOPPED at h1 (1/2)", out)
        h1, h2 = self.hosts
        self.assertEqual(self.current(h1), self.ver_next)
        self.assertEqual(self.current(h2), self.ver_next)
        for h in self.hosts:
            self.assertIsNone(h["server"].proc.poll())
        ok, sout = pu.sdk_workflow(h1["port"])
        self.assertTrue(ok, sout)
        self.assertEqual(load.failed, 0, load.summary())


if __name__ == "__main__":
    unittest.main()
