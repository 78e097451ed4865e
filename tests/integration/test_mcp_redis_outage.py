"""Redis outage (owner: core): csmcpd on its own Redis (port 19003). While Redis is down /mcp
answers 503 with Retry-After (never hangs, never crashes); when Redis is back the workers
reconnect by themselves and sessions can be created and used again."""
import os
import shutil
import subprocess
import tempfile
import time
import unittest

import lib
from lib import assert_no_crash, mcp_initialize as initialize, mcp_rpc as rpc

PORT = 19003


class RedisOutage(lib.TestCase):
    def start_redis(self):
        p = subprocess.Popen(["redis-server", "--bind", "127.0.0.1", "--port", str(PORT),
                              "--save", "", "--appendonly", "no", "--dir", self.dir],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        lib.wait_until(lambda: self._ping(), 10, what="redis up")
        return p

    def _ping(self):
        import socket
        try:
            with socket.create_connection(("127.0.0.1", PORT), timeout=1) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def setUp(self):
        self.assertIsNotNone(shutil.which("redis-server"), "redis-server is required")
        self.dir = tempfile.mkdtemp(prefix="csmcp-redis-")
        self.redis = self.start_redis()

    def tearDown(self):
        if self.redis.poll() is None:
            self.redis.kill()
            self.redis.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)

    def test_outage_503_then_recovery(self):
        d = lib.Csmcpd(workers=2, fixtures=True, auth=False,
                       conf={"redis": {"url": "redis://127.0.0.1:%d/0" % PORT,
                                       "timeout_ms": 500},
                             "ratelimit": {"fail_open": True}})
        with d:
            sid, _ = initialize(d.port)
            self.assertEqual(rpc(d.port, "ping", sid=sid)[0], 200)
            self.redis.kill()
            self.redis.wait(10)
            t0 = time.monotonic()
            for _ in range(6):
                st, hd, msgs, _ = rpc(d.port, "ping", sid=sid, timeout=5)
                self.assertEqual(st, 503)
                self.assertIn("retry-after", hd)
            self.assertLess(time.monotonic() - t0, 10)
            st, _, _ = d.get("/ready")
            self.assertEqual(st, 503)
            self.redis = self.start_redis()  # empty: the old session is gone
            lib.wait_until(lambda: d.get("/ready")[0] == 200 or
                           rpc(d.port, "ping", sid=sid)[0] == 404, 20, what="reconnect")

            def works():
                s2, _ = initialize(d.port)
                return rpc(d.port, "tools/call", {"name": "test_simple_text"}, sid=s2)[0] == 200
            lib.wait_until(works, 20, interval=0.2, what="new sessions after the outage")
            # The old session is gone everywhere: each worker answers 404 once it has
            # reconnected (503 until then - the two need not reconnect in the same heartbeat),
            # never anything else; four 404s in a row cover both workers.
            seen = []

            def old_session_gone():
                st = rpc(d.port, "ping", sid=sid)[0]
                seen.append(st)
                self.assertIn(st, (404, 503), seen)
                return seen[-4:] == [404] * 4
            lib.wait_until(old_session_gone, 20, interval=0.1, what="404 for the old session")
        assert_no_crash(d)


if __name__ == "__main__":
    unittest.main()
