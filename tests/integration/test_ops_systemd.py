"""systemd units: `systemd-analyze verify` and `security` on the installed units, the install
layout of `meson install`, sysusers, sysctl, and the consistency of the units with
etc/csmcp.production.conf.

No booted systemd is needed: `meson install --destdir` puts everything into a temp root, the
host's own /usr/lib/systemd/system (sysinit.target, network-online.target, ...) is copied
beside it, and `systemd-analyze verify --root=ROOT` resolves units and ExecStart= binaries
inside that root (it only needs the systemd package, not a running PID 1).
"""
import os
import re
import shutil
import unittest

import lib
import ops_util as ou

UNITS = ["csmcp.service", "csmcp.socket", "csmcp-backup.service", "csmcp-backup.timer"]
SRC_UNITS = os.path.join(ou.ROOT, "systemd")


class TestSystemdUnits(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        lib.need_tool("systemd-analyze", "systemd")
        cls.root, cls.opts = ou.install_tree(lib.BUILD)
        cls.prefix = cls.opts["prefix"]
        cls.unitdir = os.path.join(cls.prefix, "lib", "systemd", "system")
        # The targets our units name (sysinit.target via default dependencies, ...).
        shutil.copytree("/usr/lib/systemd/system",
                        os.path.join(cls.root, "usr", "lib", "systemd", "system"),
                        symlinks=True, dirs_exist_ok=True)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.root, ignore_errors=True)

    def rooted(self, path):
        return os.path.join(self.root, path.lstrip("/"))

    def test_install_layout(self):
        p, o = self.prefix, self.opts
        expect = [
            os.path.join(p, o["sbindir"], "csmcpd"),
            os.path.join(p, o["bindir"], "csmcpctl"),
            os.path.join(p, o["libexecdir"], "csmcp", "csmcp-worker"),
            os.path.join(p, o["sbindir"], "csmcp-backup"),
            os.path.join(p, o["sbindir"], "csmcp-restore"),
            os.path.join(p, "lib", "sysctl.d", "60-csmcp.conf"),
            os.path.join(p, "lib", "sysusers.d", "csmcp.conf"),
            os.path.join(p, o["datadir"], "doc", "csmcp", "examples", "csmcp.production.conf"),
            os.path.join(p, o["datadir"], "doc", "csmcp", "examples", "csmcp.staging.conf"),
            os.path.join(p, o["datadir"], "doc", "csmcp", "examples", "monitoring",
                         "csmcp.rules.yml"),
            os.path.join(p, o["datadir"], "doc", "csmcp", "operations", "deploy.md"),
        ] + [os.path.join(self.unitdir, u) for u in UNITS]
        missing = [e for e in expect if not os.path.exists(self.rooted(e))]
        self.assertEqual(missing, [], "not installed by `meson install`")
        for exe in expect[:5]:
            self.assertTrue(os.access(self.rooted(exe), os.X_OK), exe)

    def test_installed_units_point_at_installed_binaries(self):
        with open(self.rooted(os.path.join(self.unitdir, "csmcp.service"))) as f:
            text = f.read()
        for m in re.finditer(r"^Exec\w+=(\S+)", text, re.M):
            self.assertTrue(os.access(self.rooted(m.group(1)), os.X_OK),
                            "%s names %s, which meson install did not put there"
                            % ("csmcp.service", m.group(1)))

    def test_systemd_analyze_verify(self):
        units = [os.path.join(self.unitdir, u) for u in UNITS]
        r = ou.run(["systemd-analyze", "verify", "--man=no", "--generators=no",
                    "--root=" + self.root] + units)
        out = (r.stdout + r.stderr).strip()
        self.assertEqual(r.returncode, 0, out)
        # Unknown keys and bad values are only warnings to verify: any output is a finding.
        self.assertEqual(out, "", "systemd-analyze verify printed warnings")

    def test_verify_catches_a_broken_unit(self):
        """The check above can fail: a typo'd key and a missing binary are reported."""
        bad = self.rooted(os.path.join(self.unitdir, "csmcp-broken.service"))
        with open(self.rooted(os.path.join(self.unitdir, "csmcp.service"))) as f:
            text = f.read().replace("KillMode=mixed", "KillMod=mixed")
        text = re.sub(r"^ExecReload=\S+", "ExecReload=/nonexistent/csmcpctl", text, flags=re.M)
        with open(bad, "w") as f:
            f.write(text)
        try:
            r = ou.run(["systemd-analyze", "verify", "--man=no", "--generators=no",
                        "--root=" + self.root, os.path.join(self.unitdir, "csmcp-broken.service")])
            out = r.stdout + r.stderr
            self.assertNotEqual(r.returncode, 0, out)
            self.assertIn("KillMod", out)
            self.assertIn("/nonexistent/csmcpctl", out)
        finally:
            os.unlink(bad)

    def test_security_exposure(self):
        for unit in ("csmcp.service", "csmcp-backup.service"):
            r = ou.run(["systemd-analyze", "security", "--offline=true", "--no-pager",
                        "--root=" + self.root, os.path.join(self.unitdir, unit)])
            m = re.search(r"Overall exposure level for \S+: ([0-9.]+)", r.stdout + r.stderr)
            self.assertIsNotNone(m, r.stdout + r.stderr)
            print("    %s exposure %s" % (unit, m.group(1)))
            self.assertLessEqual(float(m.group(1)), 2.0,
                                 "%s hardening regressed:\n%s" % (unit, r.stdout))

    def test_sysusers_creates_the_service_user(self):
        root = self.rooted("/sysusers-root")
        os.makedirs(os.path.join(root, "etc"))
        r = ou.run(["systemd-sysusers", "--root=" + root,
                    self.rooted(os.path.join(self.prefix, "lib", "sysusers.d", "csmcp.conf"))])
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(os.path.join(root, "etc", "passwd")) as f:
            line = [l for l in f if l.startswith("csmcp:")]
        self.assertEqual(len(line), 1)
        uid = int(line[0].split(":")[2])
        self.assertLess(uid, 1000, "must be a system user")
        self.assertTrue(line[0].rstrip().endswith("/usr/sbin/nologin"))

    def test_sysctl_keys_exist(self):
        with open(os.path.join(SRC_UNITS, "60-csmcp.conf")) as f:
            keys = [l.split("=")[0].strip() for l in f if "=" in l and not l.startswith("#")]
        self.assertIn("net.core.somaxconn", keys)
        # tcp_migrate_req appeared in Linux 5.14; Debian 12 ships 6.1.
        for k in keys:
            self.assertTrue(os.path.exists("/proc/sys/" + k.replace(".", "/")),
                            "%s is not a sysctl of this kernel" % k)


class TestUnitsMatchProductionConfig(unittest.TestCase):
    """The units and etc/csmcp.production.conf are deployed together: they must agree."""

    @classmethod
    def setUpClass(cls):
        cls.conf = ou.read_libconfig(os.path.join(ou.ROOT, "etc", "csmcp.production.conf"))
        cls.svc = ou.read_unit(os.path.join(SRC_UNITS, "csmcp.service"))
        cls.sock = ou.read_unit(os.path.join(SRC_UNITS, "csmcp.socket"))

    def svc1(self, key):
        v = ou.unit_get(self.svc, "Service", key)
        self.assertEqual(len(v), 1, "%s: expected once, got %r" % (key, v))
        return v[0]

    @staticmethod
    def seconds(v):
        m = re.match(r"^(\d+)(s|min)?$", v)
        return int(m.group(1)) * (60 if m.group(2) == "min" else 1)

    def test_service_contract(self):
        self.assertEqual(self.svc1("Type"), "notify")
        self.assertEqual(self.svc1("NotifyAccess"), "main")
        self.assertEqual(self.svc1("KillMode"), "mixed")
        self.assertEqual(self.svc1("OOMPolicy"), "continue")
        self.assertEqual(self.svc1("Restart"), "on-failure")
        self.assertGreaterEqual(self.seconds(self.svc1("RestartSec")), 1)
        self.assertEqual(self.svc1("CapabilityBoundingSet"), "")
        self.assertEqual(self.svc1("User"), "csmcp")
        self.assertIn("@system-service", ou.unit_get(self.svc, "Service", "SystemCallFilter"))
        self.assertIn("reload --wait", self.svc1("ExecReload"))
        self.assertTrue(self.svc1("ExecStartPre").endswith("-t -c /etc/csmcp/csmcp.conf"))

    def test_stop_timeout_covers_drain(self):
        s = self.conf["server"]
        self.assertGreater(self.seconds(self.svc1("TimeoutStopSec")),
                           s["drain_timeout"] + s["kill_grace"])

    def test_watchdog_is_above_heartbeat_granularity(self):
        self.assertGreaterEqual(self.seconds(self.svc1("WatchdogSec")), 10)

    def test_reload_talks_to_the_configured_control_socket(self):
        m = re.search(r"-s (\S+)", self.svc1("ExecReload"))
        self.assertEqual(m.group(1), self.conf["control"]["socket"])
        self.assertTrue(self.conf["control"]["socket"].startswith("/run/csmcp/"),
                        "control socket must live in RuntimeDirectory=csmcp")

    def test_file_limit_covers_connections(self):
        s, d = self.conf["server"], self.conf["database"]
        need = s["max_connections"] + d["pool_size"] + 64
        self.assertGreaterEqual(int(self.svc1("LimitNOFILE")), need)

    def test_every_secret_is_a_loaded_credential(self):
        creds = {v.split(":", 1)[0] for v in ou.unit_get(self.svc, "Service", "LoadCredential")}
        used = set()
        for g, kv in self.conf.items():
            for k, v in kv.items():
                if isinstance(v, str) and v.startswith("/run/credentials/"):
                    self.assertTrue(v.startswith("/run/credentials/csmcp.service/"), v)
                    used.add(v.rsplit("/", 1)[1])
        self.assertEqual(used, creds, "config credential files vs LoadCredential= names")
        for secret_key in [("database", "password_file"), ("redis", "password_file"),
                           ("mcp", "session_secret_file"), ("secrets", "vault_key_file"),
                           ("tls", "key_file")]:
            v = self.conf[secret_key[0]][secret_key[1]]
            self.assertTrue(v.startswith("/run/credentials/csmcp.service/"),
                            "%s.%s must come from a credential" % secret_key)

    def test_socket_unit_matches_listener(self):
        listen = ou.unit_get(self.sock, "Socket", "ListenStream")
        port = self.conf["server"]["listen"][0].rsplit(":", 1)[1]
        self.assertEqual([l.rsplit(":", 1)[-1] for l in listen], [port])
        self.assertEqual(int(ou.unit_get(self.sock, "Socket", "Backlog")[0]),
                         self.conf["server"]["backlog"])
        self.assertEqual(ou.unit_get(self.sock, "Socket", "FileDescriptorName"), ["mcp"])
        # PartOf=/BindsTo= the service would restart the socket with it and drop the backlog.
        for k in ("PartOf", "BindsTo"):
            self.assertEqual(ou.unit_get(self.sock, "Unit", k), [], k)


if __name__ == "__main__":
    unittest.main()
