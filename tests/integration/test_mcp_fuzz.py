"""Hostile input on /mcp (owner: core): random JSON-RPC messages and params, truncated and
garbage HTTP, clients vanishing mid-stream. Bounded (a few seconds each, fixed seeds). The
workers must answer every parseable request with a 2xx/4xx (never 5xx), never crash, and
still serve afterwards."""
import json
import random
import socket
import time
import unittest

import lib
from lib import assert_no_crash, mcp_initialize as initialize, mcp_post as post
from lib import mcp_rpc as rpc

METHODS = ["tools/call", "tools/list", "resources/read", "resources/list", "prompts/get",
           "prompts/list", "completion/complete", "logging/setLevel", "ping", "initialize",
           "resources/subscribe", "resources/templates/list", "notifications/cancelled", "x"]
TOOLS = ["test_simple_text", "test_sampling", "test_elicitation", "test_structured_output",
         "json_schema_2020_12_tool", "test_tool_with_progress", "test_reconnection", "nope",
         None, 5]
KEYS = ["name", "arguments", "uri", "cursor", "level", "ref", "argument", "_meta", "text", "a"]


def rnd_val(rng, d=0):
    r = rng.random()
    if d > 3 or r < 0.3:
        return rng.choice([None, True, 1, -1.5, "", "x" * rng.randint(0, 50), "\u00e9\x00",
                           10 ** 30])
    if r < 0.6:
        return {rng.choice(KEYS): rnd_val(rng, d + 1) for _ in range(rng.randint(0, 4))}
    return [rnd_val(rng, d + 1) for _ in range(rng.randint(0, 4))]


class McpFuzz(lib.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = lib.Csmcpd(workers=2, fixtures=True, auth=False,
                           conf={"ratelimit": {"enabled": False}})
        cls.d.start()

    @classmethod
    def tearDownClass(cls):
        cls.d.stop()
        assert_no_crash(cls.d)

    def test_random_jsonrpc(self):
        rng = random.Random(1)
        port = self.d.port
        sid, _ = initialize(port, capabilities={"sampling": {}})
        n, end = 0, time.monotonic() + 5
        while time.monotonic() < end and n < 5000:
            msg = {"jsonrpc": rng.choice(["2.0", "2.0", "2.0", "1.0", None]),
                   "method": rng.choice(METHODS)}
            if rng.random() < 0.8:
                msg["id"] = rng.choice([1, "a", None, 2.5, [1]])
            p = rnd_val(rng)
            if rng.random() < 0.5:
                p = {"name": rng.choice(TOOLS), "arguments": rnd_val(rng),
                     "uri": rng.choice(["test://static-text", "test://template/1/data",
                                        "test://template//data", "x"]),
                     "cursor": rng.choice(["p:1", "p:-1", "p:99999", "zz", 3])}
            if rng.random() < 0.9:
                msg["params"] = p
            body = json.dumps(msg)
            if rng.random() < 0.1:
                body = body[:rng.randint(0, len(body))]
            if rng.random() < 0.05:
                body = "[" + body + "," + body + "]"
            hdrs = {}
            if rng.random() < 0.1:
                hdrs["MCP-Protocol-Version"] = rng.choice(["2025-03-26", "bogus", ""])
            st, _, _, raw = post(port, body, sid if rng.random() < 0.95 else "v1.x.y", None,
                                 headers=hdrs, timeout=10)
            self.assertLess(st, 500, (body, raw))
            n += 1
        self.assertGreater(n, 100)
        st, _, msgs, _ = rpc(port, "ping", sid=sid)
        self.assertEqual(st, 200)

    def test_garbage_http_and_vanishing_clients(self):
        rng = random.Random(2)
        port = self.d.port
        sid, _ = initialize(port)

        def req(body):
            return (b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                    b"Accept: application/json, text/event-stream\r\nMcp-Session-Id: " +
                    sid.encode() + b"\r\nContent-Length: %d\r\n\r\n" % len(body) + body)

        calls = [json.dumps({"jsonrpc": "2.0", "id": i, "method": "tools/call", "params": {
            "name": n, "arguments": {}, "_meta": {"progressToken": 1}}}).encode()
            for i, n in enumerate(["test_tool_with_progress", "test_reconnection",
                                   "test_tool_with_logging", "test_simple_text"])]
        n, end = 0, time.monotonic() + 5
        while time.monotonic() < end and n < 2000:
            s = socket.create_connection(("127.0.0.1", port), timeout=2)
            r = rng.random()
            try:
                if r < 0.3:
                    s.sendall(req(rng.choice(calls)))
                    time.sleep(rng.choice([0, 0.01, 0.06]))
                elif r < 0.5:
                    s.sendall(bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 400))))
                elif r < 0.7:
                    b = req(rng.choice(calls)) * rng.randint(1, 5)
                    s.sendall(b[:rng.randint(1, len(b))])
                elif r < 0.85:
                    s.sendall(b"GET /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream"
                              b"\r\nMcp-Session-Id: " + sid.encode() + b"\r\n" +
                              rng.choice([b"", b"Last-Event-ID: 0123456789abcdef_0\r\n",
                                          b"Last-Event-ID: zz\r\n"]) + b"\r\n")
                    time.sleep(0.01)
                else:
                    s.sendall(b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: "
                              b"chunked\r\n\r\nffffffffffffffff\r\nxx")
                if rng.random() < 0.5:
                    s.settimeout(0.05)
                    try:
                        s.recv(65536)
                    except OSError:
                        pass
            except OSError:
                pass
            s.close()
            n += 1
        time.sleep(0.5)
        st, _, msgs, _ = rpc(port, "tools/call", {"name": "test_simple_text"}, sid=sid)
        self.assertEqual(st, 200)
        st, _, _ = self.d.get("/health")
        self.assertEqual(st, 200)


if __name__ == "__main__":
    unittest.main()
