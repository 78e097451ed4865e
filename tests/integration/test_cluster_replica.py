"""Read replica (owner: cluster, issue 20): database.read_url on a real streaming replica
(pg_basebackup of the test cluster, -R, hot standby). Tools marked "replica_ok" read from it
while its replay lag is within database.max_replica_lag; with replay paused
(pg_wal_replay_pause()) and a write on the primary they fall back to the primary and answer the
fresh value (csmcp_db_replica_reads_total{result="lagging"}); a replica that is down sends them
to the primary; write-then-read through another host (non replica_ok tools) always sees the
write. All on 127.0.0.1."""
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import unittest

import data_util as du
import lib

# run.py --jobs runs this module alone: it replicates the shared test cluster, whose lag
# depends on every other writer
RUN_ALONE = True


def metric(d, name, labels):
    """Sum of the supervisor's name{...labels...} samples (0 when absent)."""
    text = d.admin("/metrics")[2].decode()
    total = 0.0
    for m in re.finditer(r"^%s\{([^}]*)\} (\S+)$" % re.escape(name), text, re.M):
        if all(x in m.group(1) for x in labels):
            total += float(m.group(2))
    return total


class Replica(lib.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.url = lib.database_url()
        admin = lib.need_env("CSMCP_PG_ADMIN_URL")
        cls.port = lib.free_port()
        cls.dir = tempfile.mkdtemp(prefix="csmcp-it-replica-")
        cls.data = os.path.join(cls.dir, "data")
        if os.geteuid() == 0:
            shutil.chown(cls.dir, "postgres", "postgres")
        bindir = lib.pg_bindir()
        r = subprocess.run(lib._as_postgres([os.path.join(bindir, "pg_basebackup"), "-d", admin,
                                             "-D", cls.data, "-R", "-X", "stream", "-c", "fast"]),
                           capture_output=True, text=True, timeout=300)
        if r.returncode != 0:
            raise AssertionError("pg_basebackup failed: %s" % r.stderr)
        with open(os.path.join(cls.data, "postgresql.conf"), "a") as f:
            f.write("\n# test replica\nport = %d\nunix_socket_directories = '%s'\n"
                    "shared_buffers = 32MB\nhot_standby = on\n"
                    "max_standby_streaming_delay = 30s\n" % (cls.port, cls.data))
        cls.pg_ctl = staticmethod(lambda *a: subprocess.run(
            lib._as_postgres([os.path.join(bindir, "pg_ctl"), "-D", cls.data, "-l",
                              os.path.join(cls.data, "server.log"), "-w", "-t", "60"] + list(a)),
            capture_output=True, text=True, timeout=120))
        r = cls.pg_ctl("start")
        if r.returncode != 0:
            raise AssertionError("replica start failed: %s %s" % (r.stdout, r.stderr))
        cls.rurl = re.sub(r"@127\.0\.0\.1:\d+/", "@127.0.0.1:%d/" % cls.port, cls.url)
        cls.radmin = "postgresql://postgres@127.0.0.1:%d/postgres" % cls.port
        lib.wait_until(lambda: lib.psql_run(cls.radmin, "SELECT pg_is_in_recovery()").stdout
                       .strip() == "t", 60, what="replica in recovery")
        cls.p = du.prefix()
        conf = {"database": {"read_url": cls.rurl, "max_replica_lag": 1},
                "ratelimit": {"enabled": False}}
        cls.a = lib.Csmcpd(workers=1, conf=conf).start()
        cls.b = lib.Csmcpd(workers=1, conf=conf).start()

    @classmethod
    def tearDownClass(cls):
        for d in (cls.a, cls.b):
            d.stop()
        cls.pg_ctl("-m", "immediate", "stop")
        shutil.rmtree(cls.dir, ignore_errors=True)

    def caught_up(self):
        self.assertEqual(lib.psql(self.radmin, "SELECT pg_wal_replay_resume()").strip(), "")
        mark = lib.psql(self.url, "SELECT pg_current_wal_lsn()").strip()
        lib.wait_until(lambda: lib.psql(self.radmin, "SELECT pg_last_wal_replay_lsn() >= '%s'"
                                        % mark).strip() == "t", 30, what="replica caught up")

    def csat_account(self, k):
        """An account with 5 CSAT answers 3 days ago averaging 4.4 (written on the primary)."""
        cid = "%s_%s" % (self.p, k)
        lib.psql(self.url, "INSERT INTO accounts (client_id, client_name, company_name, tier, "
                 "created_at) VALUES ('%s', 'R %s', 'R', 'enterprise', now() - interval '400 days');"
                 % (cid, k) + "".join(
                     "INSERT INTO csat_responses (response_id, client_id, survey_type, score, "
                     "responded_at) VALUES ('%s-r%d', '%s', 'csat', %d, now() - interval '3 days');"
                     % (cid, i, cid, sc) for i, sc in enumerate([5, 4, 4, 5, 4])))
        return cid

    def csat(self, d, cid):
        s = d.session()
        try:
            return s.call_tool("track_cs_metrics", {"metric_type": "csat", "client_id": cid})
        finally:
            s.close()

    def test_1_fresh_replica_serves_replica_ok_tools(self):
        cid = self.csat_account("fresh")
        self.caught_up()
        before = metric(self.a, "csmcp_db_replica_reads_total", ['result="replica"'])
        lib.wait_until(lambda: (self.csat(self.a, cid), metric(
            self.a, "csmcp_db_replica_reads_total", ['result="replica"']))[1] > before, 15,
            interval=0.3, what="a read served by the replica")
        r = self.csat(self.a, cid)
        self.assertFalse(r.get("isError"), r)
        self.assertEqual(r["structuredContent"]["current_metrics"]["value"], 4.4)
        # The other replica_ok tools run there too (a write inside one would fail with 25006).
        before = metric(self.a, "csmcp_db_replica_reads_total", ['result="replica"'])
        s = self.a.session()
        try:
            for name in ("identify_churn_risk", "track_revenue_expansion"):
                r = s.call_tool(name, {})
                self.assertFalse(r.get("isError"), (name, r))
        finally:
            s.close()
        lib.wait_until(lambda: metric(self.a, "csmcp_db_replica_reads_total",
                                      ['result="replica"']) >= before + 2, 5,
                       what="both served by the replica")
        apps = lib.psql(self.radmin, "SELECT DISTINCT application_name FROM pg_stat_activity "
                        "WHERE datname = 'csmcp'").split()
        self.assertIn("csmcp-worker-read", apps)

    def test_2_lagging_replica_falls_back_to_primary(self):
        self.caught_up()
        lib.psql(self.radmin, "SELECT pg_wal_replay_pause()")
        lib.wait_until(lambda: lib.psql(self.radmin, "SELECT pg_get_wal_replay_pause_state()")
                       .strip() == "paused", 10, what="replay paused")
        cid = self.csat_account("lag")   # exists on the primary only
        self.assertEqual(lib.psql(self.radmin.replace("/postgres", "/csmcp"),
                                  "SELECT count(*) FROM accounts WHERE client_id = '%s'" % cid)
                         .strip(), "0")
        time.sleep(2.5)   # past max_replica_lag (1 s) plus one lag check (1 s)
        lagging = metric(self.a, "csmcp_db_replica_reads_total", ['result="lagging"'])
        r = self.csat(self.a, cid)
        self.assertFalse(r.get("isError"), r)   # the replica would say "not found"
        self.assertEqual(r["structuredContent"]["current_metrics"]["value"], 4.4)
        lib.wait_until(lambda: metric(self.a, "csmcp_db_replica_reads_total",
                                      ['result="lagging"']) > lagging, 5, what="lagging counted")
        # Read-your-writes through another host: a write on A, then reads on B (not replica_ok)
        # see it at once although the replica is paused.
        sa = self.a.session()
        out = sa.call_ok("register_client", {"client_name": "RYW %s" % self.p,
                                             "company_name": "RYW"})
        sa.close()
        new_id = out["client_id"]
        sb = self.b.session()
        try:
            ov = sb.call_tool("get_client_overview", {"client_id": new_id})
            self.assertFalse(ov.get("isError"), ov)
            lst = sb.call_ok("list_clients", {"search": "RYW %s" % self.p})
            self.assertIn(new_id, json.dumps(lst))
        finally:
            sb.close()
        self.caught_up()

    def test_3_replica_down_reads_go_to_primary(self):
        cid = self.csat_account("down")
        self.caught_up()
        r = self.pg_ctl("-m", "fast", "stop")
        self.assertEqual(r.returncode, 0, r.stderr)
        try:
            t0 = time.monotonic()
            for _ in range(5):
                r = self.csat(self.b, cid)
                self.assertFalse(r.get("isError"), r)
                self.assertEqual(r["structuredContent"]["current_metrics"]["value"], 4.4)
            self.assertLess(time.monotonic() - t0, 10)
            lib.wait_until(lambda: metric(self.b, "csmcp_db_replica_reads_total",
                                          ['result="unavailable"']) +
                           metric(self.b, "csmcp_db_replica_reads_total",
                                  ['result="retried_on_primary"']) +
                           metric(self.b, "csmcp_db_replica_reads_total",
                                  ['result="lag_unknown"']) >= 1, 5, what="fallback counted")
            self.assertEqual(self.b.get("/ready")[0], 200)   # a replica is not a dependency
        finally:
            self.pg_ctl("start")


if __name__ == "__main__":
    unittest.main()
