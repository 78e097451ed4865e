"""Smoke version of the scale benchmark (tests/load/scale, docs/scale.md): keeps mcpload working.

200 keep-alive connections, each its own MCP session (initialize + notifications/initialized),
from two loopback source addresses, run the tool mix (reads, analytics, writes) for 5 s against
csmcpd with auth on: every session is set up, every call succeeds, every tool of the mix ran.
Then a reload in the middle of a run: no request fails (connections the draining workers close
are reopened with the same session, which lives in Redis).
"""
import json
import os
import subprocess
import tempfile
import threading
import time

import lib

# run.py --jobs runs this module alone: it measures throughput
RUN_ALONE = True

MCPLOAD = os.path.join(lib.BUILD, "tests", "load", "scale", "mcpload")
MIX = ["get_client_overview", "list_clients", "calculate_health_score", "track_usage_engagement",
       "update_client_info", "ingest_usage_events"]
NO_LIMITS = {"ratelimit": {"key_per_minute": 10000000, "tool_per_minute": 10000000,
                           "write_per_minute": 10000000}}


class ScaleSmokeTest(lib.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.access(MCPLOAD, os.X_OK):
            raise AssertionError("%s is missing: tests/load/scale is part of the build" % MCPLOAD)
        cls.tmp = tempfile.mkdtemp(prefix="scale-smoke-")
        cls.d = lib.Csmcpd(workers=2, auth=True, conf=NO_LIMITS).start()
        r = cls.d.ctl_db("key", "create", "--name", "scale-smoke", "--scopes", "read,write")
        token = [w for w in (r.stdout + r.stderr).split() if w.startswith("csk_")]
        if not token:
            raise AssertionError("key create failed: %s %s" % (r.stdout, r.stderr))
        cls.token = token[0]
        s = cls.d.session(token=cls.token)
        ids = [c["client_id"] for c in s.call_ok("list_clients", {"limit": 50})["clients"]]
        s.close()
        if not ids:
            raise AssertionError("the test database has no accounts (csmcpctl seed)")
        cls.accounts = os.path.join(cls.tmp, "accounts")
        with open(cls.accounts, "w") as f:
            f.write("\n".join(ids) + "\n")

    @classmethod
    def tearDownClass(cls):
        cls.d.stop()

    def mcpload(self, conns, duration, extra=(), during=None):
        # 4 in flight = 2 workers x database.pool_size 2: no call waits for a pooled connection
        # long enough to get "database busy" (queue_timeout_ms) on a slow machine
        out = os.path.join(self.tmp, "out-%d.json" % time.monotonic_ns())
        cmd = [MCPLOAD, "--port", str(self.d.port), "--connections", str(conns),
               "--duration", str(duration), "--inflight", "4", "--accounts", self.accounts,
               "--sources", "127.0.0.1,127.0.0.2", "--procs", "2", "--timeout", "15000",
               "--setup-timeout", "60", "--json", out] + list(extra)
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             env=dict(os.environ, MCPLOAD_TOKEN=self.token))
        lines = []
        th = None
        for line in p.stdout:
            lines.append(line)
            if line.startswith("LOAD") and during:
                th = threading.Thread(target=during)
                th.start()
        p.wait(timeout=120)
        if th:
            th.join(60)
        text = "".join(lines)
        self.assertEqual(p.returncode, 0, text)
        with open(out) as f:
            return json.load(f), text

    def test_sessions_and_mix(self):
        # every tool equally often, so each one runs even when the machine is slow
        res, text = self.mcpload(200, 5, extra=["--mix", "1,1,1,1,1,1"])
        self.assertEqual(res["established"], 200, text)
        self.assertEqual(res["setup_failed"], 0, text)
        self.assertGreater(res["requests"], 30, text)
        self.assertEqual(res["failed"], 0, text)
        self.assertEqual(sum(res["errors"].values()), 0, text)
        for tool in MIX:
            self.assertGreater(res["tools"][tool]["ok"], 0, "%s never ran:\n%s" % (tool, text))
        self.assertGreater(res["p99_ms"], 0, text)
        self.assertGreaterEqual(res["p99_ms"], res["p50_ms"], text)
        self.assertIn("latency ms: p50", text)

    def test_reload_during_load_loses_nothing(self):
        result = {}

        def reload():
            time.sleep(1.5)
            result["reload"] = self.d.ctl("reload", "--wait", timeout=60)

        res, text = self.mcpload(100, 5, during=reload)
        self.assertEqual(result["reload"].returncode, 0, result["reload"].stderr)
        self.assertEqual(res["established"], 100, text)
        self.assertEqual(res["failed"], 0, text)
        self.assertGreater(res["requests"], 10, text)
        # the old generation's workers closed their connections; the sessions went on
        self.assertGreater(res["idle_closed"] + res["server_closed"] + res["retried"], 0, text)
