"""Rate limits: token buckets in Redis shared by every worker (exactness across 4 workers),
per key and per key+tool with read/write classes, 429 + Retry-After + a JSON-RPC error naming
the limit, and behaviour when Redis is down (fail-open local limiter / fail-closed 503)."""
import json
import re
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

import lib
import sec_util as su

ACCEPT = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}


def ping(port, token, n=1):
    """n POSTs of an initialize on one keep-alive connection; returns [(status, hdrs, body)]."""
    import http.client
    out = []
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    h = dict(ACCEPT)
    h["Authorization"] = "Bearer " + token
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": lib.PROTOCOL, "capabilities": {},
        "clientInfo": {"name": "rl", "version": "1"}}})
    try:
        for _ in range(n):
            c.request("POST", "/mcp", body=body, headers=h)
            r = c.getresponse()
            out.append((r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()))
    finally:
        c.close()
    return out


def hammer(d, token, duration, clients=8, until_limited=0):
    """clients threads POST initialize on keep-alive connections for duration s (and, with
    until_limited, on until a 429 came back or until_limited s have passed: a loaded machine
    may need longer to spend the bucket); returns (results, elapsed)."""
    results = []
    lock = threading.Lock()
    limited = threading.Event()
    t0 = time.monotonic()

    def client():
        mine = []
        while True:
            t = time.monotonic() - t0
            if t >= duration and (t >= until_limited or limited.is_set()):
                break
            got = ping(d.port, token, 10)
            if any(s == 429 for s, _, _ in got):
                limited.set()
            mine.extend(got)
        with lock:
            results.extend(mine)
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return results, time.monotonic() - t0


def metric(d, name, match=""):
    st, _, body = d.admin("/metrics")
    return sum(float(line.rsplit(" ", 1)[1]) for line in body.decode().splitlines()
               if line.startswith(name) and match in line and not line.startswith("#"))


class LeaseExactness(lib.TestCase):
    """A large bucket is spent in leases (ratelimit.c): never more than the bucket allows, at
    most 1 % of it held unspent in the workers, and far fewer Redis calls than requests."""
    LIMIT = 4000  # per minute, 4 workers: leases of 4000 / (100 x 4) = 10 tokens

    @classmethod
    def setUpClass(cls):
        cls.d = lib.Csmcpd(workers=4, auth=True, conf={"ratelimit": {
            "key_per_minute": cls.LIMIT, "tool_per_minute": 100000,
            "write_per_minute": 100000}})
        cls.d.start()

    @classmethod
    def tearDownClass(cls):
        cls.d.stop()

    def test_leases_never_exceed_the_bucket(self):
        token = su.create_key(self.d.conf_path, "read", "rl-lease")
        calls0 = metric(self.d, "csmcp_ratelimit_redis_calls_total")
        results, elapsed = hammer(self.d, token, 3.0, until_limited=30.0)
        calls = metric(self.d, "csmcp_ratelimit_redis_calls_total") - calls0
        ok = sum(1 for s, _, _ in results if s == 200)
        limited = sum(1 for s, _, _ in results if s == 429)
        self.assertEqual(ok + limited, len(results), sorted(set(s for s, _, _ in results)))
        rate = self.LIMIT / 60.0
        expect = self.LIMIT + rate * elapsed
        held = 4 * (self.LIMIT // 400)  # tokens the 4 workers may hold in leases
        print("\n    rate limit %d/min in leases: %d requests in %.2fs, %d allowed (bucket "
              "math: %.1f, up to %d held in leases), %d limited, %d Redis calls" % (
                  self.LIMIT, len(results), elapsed, ok, expect, held, limited, calls))
        self.assertGreater(limited, 0)  # the clients really pushed past the limit
        self.assertLessEqual(ok, int(expect) + 1)
        self.assertGreaterEqual(ok, int(self.LIMIT + rate * (elapsed - 0.5)) - 1 - held)
        self.assertGreater(metric(self.d, "csmcp_ratelimit_total", 'source="lease"'), 0)
        # a Redis call per lease of 10; refusals are answered locally until the next token
        self.assertLess(calls, (ok + limited) / 4, (calls, ok, limited))


class Exactness(lib.TestCase):
    LIMIT = 120  # per minute: a burst of 120, then 2 per second

    @classmethod
    def setUpClass(cls):
        cls.d = lib.Csmcpd(workers=4, auth=True, conf={"ratelimit": {
            "key_per_minute": cls.LIMIT, "tool_per_minute": 1000, "write_per_minute": 1000}})
        cls.d.start()

    @classmethod
    def tearDownClass(cls):
        cls.d.stop()

    def test_limit_is_exact_across_four_workers(self):
        """8 clients hammer one key for 3 s through 4 workers: exactly the burst plus the
        refill of the elapsed time is allowed (+-1 for a token refilled mid-flight)."""
        token = su.create_key(self.d.conf_path, "read", "rl-exact")
        results = []
        lock = threading.Lock()
        duration = 3.0
        t0 = time.monotonic()

        def client():
            mine = []
            while time.monotonic() - t0 < duration:
                mine.extend(ping(self.d.port, token, 10))
            with lock:
                results.extend(mine)
        threads = [threading.Thread(target=client) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        elapsed = time.monotonic() - t0
        ok = sum(1 for s, _, _ in results if s == 200)
        limited = [(h, b) for s, h, b in results if s == 429]
        self.assertEqual(ok + len(limited), len(results),
                         sorted(set(s for s, _, _ in results)))
        rate = self.LIMIT / 60.0
        expect = self.LIMIT + rate * elapsed
        print("\n    rate limit %d/min across 4 workers: %d requests in %.2fs, %d allowed "
              "(bucket math: %.1f), %d limited" % (self.LIMIT, len(results), elapsed, ok, expect,
                                                  len(limited)))
        self.assertGreater(len(limited), ok)  # the clients really pushed past the limit
        self.assertLessEqual(ok, int(expect) + 1)
        self.assertGreaterEqual(ok, int(self.LIMIT + rate * (elapsed - 0.5)) - 1)
        h, b = limited[0]
        self.assertGreaterEqual(int(h["retry-after"]), 1)
        err = json.loads(b)["error"]
        self.assertEqual(err["code"], -32029)
        self.assertEqual(err["data"]["limit"], "key")
        self.assertEqual(err["data"]["limit_per_minute"], self.LIMIT)
        self.assertIn("rate limit exceeded", err["message"])

    def test_retry_after_is_honest(self):
        token = su.create_key(self.d.conf_path, "read", "rl-retry")
        last = None
        for _ in range(20):  # bounded: drain the bucket (it refills while we drain it)
            r = ping(self.d.port, token, self.LIMIT // 2)
            last = next((x for x in r if x[0] == 429), None)
            if last:
                break
        self.assertIsNotNone(last, "never limited")
        wait = int(last[1]["retry-after"])
        self.assertLessEqual(wait, 2)  # 2 tokens per second
        time.sleep(wait + 0.05)
        self.assertEqual(ping(self.d.port, token, 1)[0][0], 200)

    def test_keys_have_separate_buckets(self):
        a = su.create_key(self.d.conf_path, "read", "rl-a")
        b = su.create_key(self.d.conf_path, "read", "rl-b")
        ra = ping(self.d.port, a, self.LIMIT + 5)
        self.assertEqual(ra[-1][0], 429)
        self.assertEqual(ping(self.d.port, b, 1)[0][0], 200)


class ToolClasses(lib.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = lib.Csmcpd(workers=2, auth=True, fixtures=True, conf={"ratelimit": {
            "key_per_minute": 1000, "tool_per_minute": 4, "write_per_minute": 2}})
        cls.d.start()
        cls.token = su.create_key(cls.d.conf_path, "read,write,admin", "rl-tools")

    @classmethod
    def tearDownClass(cls):
        cls.d.stop()

    def calls(self, name, args, n):
        s = lib.McpSession(self.d.port, token=self.token)
        try:
            return [s.request_raw("tools/call", {"name": name, "arguments": args})
                    for _ in range(n)]
        finally:
            s.close()

    def test_read_class(self):
        r = self.calls("test_simple_text", {}, 6)
        self.assertEqual([x[0] for x in r], [200] * 4 + [429] * 2)
        err = r[-1][2][0]["error"]
        self.assertEqual(err["data"]["limit"], "tool:test_simple_text")
        self.assertEqual(err["data"]["limit_per_minute"], 4)
        self.assertIn("retry-after", r[-1][1])

    def test_write_class(self):
        r = self.calls("erase_client_data", {"client_id": "cs_rl_none"}, 3)
        self.assertEqual([x[0] for x in r], [200, 200, 429])
        self.assertEqual(r[-1][2][0]["error"]["data"]["limit"], "tool:erase_client_data")
        self.assertEqual(r[-1][2][0]["error"]["data"]["limit_per_minute"], 2)


class RedisDown(lib.TestCase):
    """A private Redis (port from the sec range) that the test can kill."""

    def start_redis(self):
        self.rdir = tempfile.mkdtemp(prefix="csmcp-sec-redis-")
        for port in range(17510, 17560):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) != 0:
                    break
        self.rport = port
        self.redis = subprocess.Popen([su.tool("redis-server"), "--port", str(port), "--bind",
                                       "127.0.0.1", "--save", "", "--appendonly", "no",
                                       "--dir", self.rdir], stdout=subprocess.DEVNULL)
        lib.wait_until(lambda: socket.create_connection(("127.0.0.1", port), 1), 10,
                       what="private redis")

    def tearDown(self):
        if self.redis.poll() is None:
            self.redis.kill()
        self.redis.wait(10)
        shutil.rmtree(self.rdir, ignore_errors=True)

    def run_case(self, fail_open):
        self.start_redis()
        d = lib.Csmcpd(workers=1, auth=True, conf={
            "redis": {"url": "redis://127.0.0.1:%d/0" % self.rport, "timeout_ms": 300},
            "ratelimit": {"fail_open": fail_open, "key_per_minute": 1000}})
        d.start()
        try:
            token = su.create_key(d.conf_path, "read", "rl-down")
            self.assertEqual(ping(d.port, token)[0][0], 200)
            self.redis.kill()
            self.redis.wait(10)
            time.sleep(0.5)
            r = ping(d.port, token, 3)
            for st, h, body in r:
                self.assertEqual(st, 503, body)  # sessions need Redis either way
            time.sleep(0.8)  # a heartbeat carries the worker's counters to the supervisor
            _, _, metrics = d.admin("/metrics")
            st, _, ready = d.get("/ready")
            self.assertEqual(st, 503)
            self.assertEqual(json.loads(ready), {"status": "not ready"})  # details: admin only
            self.ready = re.search(r'csmcp_worker_dependency_ready\{dependency="ratelimit"\} '
                                   r'(\d+)', metrics.decode()).group(1)
            return r, metrics.decode(), d
        finally:
            d.stop()

    def test_script_cache_flush_is_survived(self):
        """Redis restarted or SCRIPT FLUSH: EVALSHA gets NOSCRIPT, the limiter reloads the
        script and the request still gets a normal answer."""
        self.start_redis()
        d = lib.Csmcpd(workers=1, auth=True, conf={
            "redis": {"url": "redis://127.0.0.1:%d/0" % self.rport},
            "ratelimit": {"key_per_minute": 1000}})
        d.start()
        try:
            token = su.create_key(d.conf_path, "read", "rl-flush")
            self.assertEqual(ping(d.port, token)[0][0], 200)
            subprocess.run([su.tool("redis-cli"), "-p", str(self.rport), "SCRIPT", "FLUSH"],
                           check=True, capture_output=True, timeout=10)
            self.assertEqual([r[0] for r in ping(d.port, token, 3)], [200, 200, 200])
            _, _, m = d.admin("/metrics")
            self.assertNotRegex(m.decode(), r'csmcp_ratelimit_total\{[^}]*source="local"')
        finally:
            d.stop()

    def test_fail_closed_refuses_and_names_the_limiter(self):
        r, metrics, _ = self.run_case(False)
        err = json.loads(r[-1][2])["error"]
        self.assertEqual(err["code"], -32030)
        self.assertIn("rate limiter unavailable", err["message"])
        self.assertEqual(self.ready, "0")  # refusing (redis down)

    def test_fail_open_uses_local_limiter(self):
        r, metrics, _ = self.run_case(True)
        self.assertNotIn(b"rate limiter unavailable", r[-1][2])
        self.assertRegex(metrics, r'csmcp_ratelimit_total\{[^}]*source="local"[^}]*\} [1-9]')
        self.assertRegex(metrics, r'csmcp_ratelimit_degraded 1')
        self.assertEqual(self.ready, "1")  # local fallback (redis down)
