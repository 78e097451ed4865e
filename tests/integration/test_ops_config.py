"""The environment configurations etc/csmcp.staging.conf and etc/csmcp.production.conf:
validated by the real `csmcpd -t`, every key a real key (`csmcpd --print-keys`), and
production safe by default (auth, TLS, JSON logs, secrets only from credential files,
database pools within the connection budget even while a reload overlaps two generations).
"""
import os
import re
import shutil
import subprocess
import tempfile
import unittest

import lib
import ops_util as ou

ETC = os.path.join(ou.ROOT, "etc")
CONFIGS = {"production": os.path.join(ETC, "csmcp.production.conf"),
           "staging": os.path.join(ETC, "csmcp.staging.conf")}
# Connection budget of the csmcp role (CONNECTION LIMIT) per environment, and what is kept
# back for csmcpctl migrate, the backup's pg_dump and an operator's psql.
BUDGET = {"production": 110, "staging": 40}
# The csmcp-monitor process (monitor.enabled) holds two connections: its leader session and
# outbox delivery.
MONITOR_CONNECTIONS = 2
RESERVE = 4


def csmcpd(*args, env=None):
    e = {k: v for k, v in os.environ.items() if not k.startswith(("CSMCP_", "LISTEN_"))}
    e.update(env or {})
    return subprocess.run([lib.CSMCPD] + list(args), capture_output=True, text=True, timeout=30,
                          env=e)


class TestEnvironmentConfigs(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.access(lib.CSMCPD, os.X_OK):
            raise AssertionError("%s not built" % lib.CSMCPD)
        r = csmcpd("--print-keys")
        assert r.returncode == 0, r.stderr
        cls.keys = set(re.findall(r"^\| `([a-z_]+\.[a-z_]+)` \|", r.stdout, re.M))
        assert len(cls.keys) > 40, r.stdout[:500]
        cls.conf = {name: ou.read_libconfig(p) for name, p in CONFIGS.items()}

    def test_csmcpd_t_accepts_both(self):
        for name, path in CONFIGS.items():
            r = csmcpd("-t", "-c", path)
            self.assertEqual(r.returncode, 0, "%s: %s%s" % (name, r.stdout, r.stderr))
            self.assertIn("OK", r.stdout + r.stderr)

    def test_csmcpd_t_rejects_a_typo_with_file_and_line(self):
        tmp = tempfile.mkdtemp(prefix="csmcp-ops-conf-")
        try:
            bad = os.path.join(tmp, "bad.conf")
            with open(CONFIGS["production"]) as f:
                lines = f.read().splitlines()
            n = next(i for i, l in enumerate(lines) if l.strip().startswith("pool_size"))
            lines[n] = lines[n].replace("pool_size", "pool_szie")
            with open(bad, "w") as f:
                f.write("\n".join(lines) + "\n")
            r = csmcpd("-t", "-c", bad)
            self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
            self.assertIn("%s:%d" % (bad, n + 1), r.stdout + r.stderr)
            # An out-of-range environment override is caught the same way.
            r = csmcpd("-t", "-c", CONFIGS["production"], env={"CSMCP_SERVER_WORKERS": "0"})
            self.assertEqual(r.returncode, 1)
            self.assertIn("CSMCP_SERVER_WORKERS", r.stdout + r.stderr)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def test_every_setting_is_a_real_key(self):
        for name, conf in self.conf.items():
            used = {"%s.%s" % (g, k) for g, kv in conf.items() for k in kv}
            self.assertEqual(sorted(used - self.keys), [], "%s uses unknown keys" % name)
            unset = sorted(self.keys - used)
            if unset:
                print("    %s leaves at their defaults: %s" % (name, ", ".join(unset)))

    def test_production_is_safe_by_default(self):
        c = self.conf["production"]
        self.assertIs(c["auth"]["required"], True)
        self.assertIs(c["tls"]["enabled"], True)
        self.assertIn(c["tls"]["min_version"], ("1.2", "1.3"))
        self.assertEqual(c["log"]["format"], "json")
        self.assertIs(c["mcp"]["conformance_fixtures"], False)
        self.assertIs(c["ratelimit"]["enabled"], True)
        self.assertIs(c["audit"]["enabled"], True)
        self.assertNotIn("*", c["mcp"]["allowed_hosts"])
        self.assertIn(c["log"]["level"], ("info", "notice", "warning"))

    def test_secrets_only_from_credential_files(self):
        for name, c in self.conf.items():
            for g, k in [("database", "password_file"), ("redis", "password_file"),
                         ("mcp", "session_secret_file"), ("secrets", "vault_key_file"),
                         ("tls", "key_file")]:
                self.assertTrue(c[g][k].startswith("/run/credentials/csmcp.service/"),
                                "%s: %s.%s" % (name, g, k))
            for g, k in [("database", "url"), ("redis", "url")]:
                self.assertNotRegex(c[g][k], r"://[^/@]*:[^/@]*@", "%s: password in %s.%s"
                                    % (name, g, k))
            self.assertIn("sslmode=verify-full", c["database"]["url"])

    def test_pool_sizes_fit_the_connection_budget(self):
        for name, c in self.conf.items():
            mon = MONITOR_CONNECTIONS if c.get("monitor", {}).get("enabled") else 0
            steady = c["server"]["workers"] * c["database"]["pool_size"] + mon
            reload_peak = 2 * steady  # draining generation + new generation
            print("    %s: %d workers x %d + %d (monitor) = %d connections, %d during a reload, "
                  "budget %d" % (name, c["server"]["workers"], c["database"]["pool_size"], mon,
                                 steady, reload_peak, BUDGET[name]))
            self.assertLessEqual(reload_peak + RESERVE, BUDGET[name])

    def test_timeouts_are_coherent(self):
        for name, c in self.conf.items():
            s = c["server"]
            self.assertLess(s["heartbeat_ms"] / 1000.0 * 3, s["worker_timeout"], name)
            self.assertLessEqual(s["backoff_min_ms"], s["backoff_max_ms"], name)
            self.assertGreater(c["http"]["idle_timeout"], 60,
                               "%s: keep-alive must outlive common LB idle timeouts" % name)
            self.assertGreater(c["mcp"]["call_timeout"] * 1000,
                               c["database"]["statement_timeout_ms"], name)


if __name__ == "__main__":
    unittest.main()
