"""Redis Sentinel (owner: cluster, issue 20): workers find the primary through real
redis-sentinel processes (redis.sentinels / redis.master_name), check ROLE, follow a failover
after the primary is SIGKILLed, resubscribe their pub/sub channels on the new primary, and the
sessions replicated before the kill stay valid. All on 127.0.0.1, ports from free_port()."""
import os
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

import lib
from lib import assert_no_crash, mcp_initialize as initialize, mcp_rpc as rpc

MASTER = "csmcp-it"


def cli(port, *args, timeout=5):
    r = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(port)] + [str(a) for a in args],
                       capture_output=True, text=True, timeout=timeout)
    return r.stdout.strip()


def info(port, key):
    for line in cli(port, "INFO", "replication").splitlines():
        if line.startswith(key + ":"):
            return line.split(":", 1)[1].strip()
    return None


class Sentinel(lib.TestCase):
    def spawn(self, args, name):
        log = open(os.path.join(self.dir, name + ".log"), "ab")
        p = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                             start_new_session=True)
        log.close()
        self.procs.append(p)
        return p

    def redis(self, port, name, extra=()):
        d = os.path.join(self.dir, name)
        os.makedirs(d)
        p = self.spawn(["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--dir", d,
                        "--save", "", "--appendonly", "no"] + list(extra), name)
        lib.wait_until(lambda: cli(port, "PING") == "PONG", 10, what="redis %d up" % port)
        return p

    def setUp(self):
        for b in ("redis-server", "redis-sentinel", "redis-cli"):
            self.assertIsNotNone(shutil.which(b), "%s is required (Debian redis-sentinel)" % b)
        self.dir = tempfile.mkdtemp(prefix="csmcp-sentinel-")
        self.procs = []
        self.p1, self.p2 = lib.free_port(), lib.free_port()
        self.sports = [lib.free_port() for _ in range(3)]
        self.r1 = self.redis(self.p1, "r1")
        self.r2 = self.redis(self.p2, "r2", ["--replicaof", "127.0.0.1", str(self.p1)])
        lib.wait_until(lambda: info(self.p2, "master_link_status") == "up", 15,
                       what="replica in sync")
        for i, sp in enumerate(self.sports):
            conf = os.path.join(self.dir, "sentinel%d.conf" % i)
            with open(conf, "w") as f:
                f.write("bind 127.0.0.1\nport %d\ndir %s\n"
                        "sentinel monitor %s 127.0.0.1 %d 2\n"
                        "sentinel down-after-milliseconds %s 1000\n"
                        "sentinel failover-timeout %s 10000\n"
                        "sentinel parallel-syncs %s 1\n" %
                        (sp, self.dir, MASTER, self.p1, MASTER, MASTER, MASTER))
            self.spawn(["redis-sentinel", conf], "sentinel%d" % i)
        for sp in self.sports:
            lib.wait_until(lambda sp=sp: cli(sp, "SENTINEL", "get-master-addr-by-name", MASTER)
                           .split() == ["127.0.0.1", str(self.p1)], 15, what="sentinel %d" % sp)
        # Every Sentinel must know the others (and the replica) before a failover can be agreed.
        lib.wait_until(lambda: all(cli(sp, "SENTINEL", "ckquorum", MASTER).startswith("OK 3")
                                   for sp in self.sports), 20, what="sentinel quorum")

    def tearDown(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)

    def conf(self, sentinels=None, master=MASTER):
        return {"redis": {"url": "redis://127.0.0.1:1/0",  # the host is Sentinel's to say
                          "sentinels": sentinels or ["127.0.0.1:%d" % p for p in self.sports],
                          "master_name": master, "timeout_ms": 500},
                "ratelimit": {"fail_open": True}}

    def numsub(self, port, channel):
        out = cli(port, "PUBSUB", "NUMSUB", channel).split()
        return int(out[1]) if len(out) == 2 else -1

    def test_config_needs_master_name(self):
        d = lib.Csmcpd(workers=1, conf={"redis": {"sentinels": ["127.0.0.1:26379"]}})
        r = subprocess.run([lib.CSMCPD, "-c", d.conf_path, "-t"], env=d.env,
                           capture_output=True, text=True, timeout=30)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("redis.master_name: required when redis.sentinels is set", r.stderr)
        d2 = lib.Csmcpd(workers=1, conf={"redis": {"sentinels": ["127.0.0.1"],
                                                   "master_name": "x"}})
        r = subprocess.run([lib.CSMCPD, "-c", d2.conf_path, "-t"], env=d2.env,
                           capture_output=True, text=True, timeout=30)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn('redis.sentinels: "127.0.0.1": want host:port', r.stderr)

    def test_unknown_master_name_is_not_ready(self):
        # A dead first Sentinel is skipped; a name no Sentinel monitors never becomes ready.
        dead = lib.free_port()
        d = lib.Csmcpd(workers=1, fixtures=True,
                       conf=self.conf(["127.0.0.1:%d" % dead] +
                                      ["127.0.0.1:%d" % p for p in self.sports], "no-such"))
        d.start(wait_ready=False)
        try:
            lib.wait_until(lambda: "master name unknown to it" in d.log_tail(200), 10,
                           what="the Sentinels' answer in the log")
            self.assertEqual(d.admin("/ready")[0], 503)
            # A worker without Redis does not accept: the connection waits in the backlog.
            with self.assertRaises(OSError):
                d.get("/ready", timeout=1)
        finally:
            d.stop()

    def test_failover_followed_sessions_and_subscriptions_survive(self):
        workers = 2
        d = lib.Csmcpd(workers=workers, fixtures=True, conf=self.conf())
        with d:
            self.assertIn("redis sentinel (query): primary of %s is 127.0.0.1:%d" %
                          (MASTER, self.p1), d.log_tail(200))
            sid, _ = initialize(d.port)
            st, _, msgs, _ = rpc(d.port, "tools/call", {"name": "test_simple_text"}, sid=sid)
            self.assertEqual(st, 200, msgs)
            # Both pub/sub channels every worker needs are subscribed on the primary.
            lib.wait_until(lambda: self.numsub(self.p1, "csmcp:sinv") >= workers, 10,
                           what="subscriptions on the primary")
            self.assertEqual(self.numsub(self.p2, "csmcp:sinv"), 0)
            # The session is replicated before the primary dies (as far as replication allows).
            lib.wait_until(lambda: info(self.p2, "master_repl_offset") ==
                           info(self.p1, "master_repl_offset"), 10, what="replica caught up")
            t0 = time.monotonic()
            self.r1.send_signal(signal.SIGKILL)
            self.r1.wait(10)

            def served():
                try:
                    s2, _ = initialize(d.port)
                    return rpc(d.port, "tools/call", {"name": "test_simple_text"},
                               sid=s2, timeout=3)[0] == 200
                except (AssertionError, OSError):
                    return False
            lib.wait_until(served, 30, interval=0.1, what="service after the failover")
            window = time.monotonic() - t0
            self.assertEqual(cli(self.p2, "ROLE").splitlines()[0], "master")
            # The old session survived (it was replicated), on the new primary.
            st, _, msgs, _ = rpc(d.port, "tools/call", {"name": "test_simple_text"}, sid=sid)
            self.assertEqual(st, 200, msgs)
            lib.wait_until(lambda: self.numsub(self.p2, "csmcp:sinv") >= workers and
                           self.numsub(self.p2, "csmcp:cancel") >= workers, 10,
                           what="every worker resubscribed on the new primary")
            # Pub/sub works across workers on the new primary: DELETE waits for every worker's
            # invalidation acknowledgement; none times out.
            st, _, _ = lib.http_request(d.port, "DELETE", "/mcp",
                                        headers=lib.mcp_headers(sid=sid))
            self.assertIn(st, (200, 204))
            self.assertEqual(rpc(d.port, "ping", sid=sid)[0], 404)
            m = d.admin("/metrics")[2].decode()
            self.assertRegex(m, r"csmcp_redis_master_switches_total(\{[^}]*\})? [1-9]")
            self.assertNotRegex(m, r"csmcp_session_invalidation_timeouts_total(\{[^}]*\})? [1-9]")
            print("\n  redis failover window (SIGKILL of the primary -> first new session "
                  "served): %.2f s" % window)
            self.assertLess(window, 30)
        assert_no_crash(d)


if __name__ == "__main__":
    unittest.main()
