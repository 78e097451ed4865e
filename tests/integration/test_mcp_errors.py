"""Raw-HTTP tests of every /mcp error path and of version negotiation (owner: core).

One csmcpd with 2 workers, conformance fixtures on, auth off, small body limit.
"""
import http.client
import json
import re
import signal
import socket
import time
import unittest

import lib
from lib import (assert_no_crash, redis_command, ACCEPT, mcp_initialize as initialize,
                 mcp_headers, mcp_post as post, mcp_rpc as rpc, SseStream)


class McpErrors(lib.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = lib.Csmcpd(workers=2, fixtures=True, auth=False,
                           conf={"http": {"max_body_size": 4096, "max_header_size": 2048}})
        cls.d.start()
        cls.port = cls.d.port
        cls.sid, cls.init = initialize(cls.port)

    @classmethod
    def tearDownClass(cls):
        cls.d.stop()
        assert_no_crash(cls.d)

    def assertRpcError(self, msgs, code, contains=None):
        self.assertEqual(len(msgs), 1, msgs)
        self.assertIn("error", msgs[0], msgs)
        self.assertEqual(msgs[0]["error"]["code"], code, msgs)
        if contains:
            self.assertIn(contains, json.dumps(msgs[0]["error"]))

    # ---- transport-level errors ----

    def test_406_wrong_accept(self):
        st, _, _, _ = post(self.port, {"jsonrpc": "2.0", "id": 1, "method": "ping"}, self.sid,
                           lib.PROTOCOL, headers={"Accept": "application/json"})
        self.assertEqual(st, 406)
        st, _, _, _ = post(self.port, {"jsonrpc": "2.0", "id": 1, "method": "ping"}, self.sid,
                           lib.PROTOCOL, headers={"Accept": "text/event-stream"})
        self.assertEqual(st, 406)

    def test_406_get_without_event_stream(self):
        st, _, _ = lib.http_request(self.port, "GET", "/mcp",
                                    headers=mcp_headers(self.sid, accept="application/json"))
        self.assertEqual(st, 406)

    def test_415_wrong_content_type(self):
        st, _, _, _ = post(self.port, "{}", self.sid, lib.PROTOCOL,
                           headers={"Content-Type": "text/plain"})
        self.assertEqual(st, 415)

    def test_400_unsupported_protocol_version_header(self):
        st, _, msgs, _ = rpc(self.port, "ping", sid=self.sid, version="1999-01-01")
        self.assertEqual(st, 400)
        self.assertIn("Unsupported protocol version", msgs[0]["error"]["message"])
        st, _, msgs, _ = rpc(self.port, "ping", sid=self.sid, version="garbage")
        self.assertEqual(st, 400)

    def test_older_supported_protocol_header_is_accepted(self):
        st, _, msgs, _ = rpc(self.port, "ping", sid=self.sid, version="2025-03-26")
        self.assertEqual(st, 200)
        self.assertEqual(msgs[0]["result"], {})

    def test_400_missing_session(self):
        st, _, msgs, _ = rpc(self.port, "tools/list", sid=None)
        self.assertEqual(st, 400)
        self.assertEqual(msgs[0]["error"]["code"], -32000)
        st, _, _ = lib.http_request(self.port, "GET", "/mcp",
                                    headers={"Accept": "text/event-stream"})
        self.assertEqual(st, 400)
        st, _, _ = lib.http_request(self.port, "DELETE", "/mcp", headers={})
        self.assertEqual(st, 400)

    def test_404_unknown_and_forged_session(self):
        for sid in ("nope", "v1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAA",
                    self.sid[:-2] + ("AA" if not self.sid.endswith("AA") else "BB")):
            st, _, _, _ = rpc(self.port, "ping", sid=sid)
            self.assertEqual(st, 404, sid)

    def test_404_after_delete(self):
        sid, _ = initialize(self.port)
        st, _, _, _ = rpc(self.port, "ping", sid=sid)
        self.assertEqual(st, 200)
        st, _, _ = lib.http_request(self.port, "DELETE", "/mcp", headers=mcp_headers(sid))
        self.assertEqual(st, 200)
        for _ in range(6):  # fresh connections: both workers
            st, _, _, _ = rpc(self.port, "ping", sid=sid)
            self.assertEqual(st, 404)
        st, _, _ = lib.http_request(self.port, "DELETE", "/mcp", headers=mcp_headers(sid))
        self.assertEqual(st, 404)

    def test_403_bad_host_and_origin(self):
        body = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": lib.PROTOCOL, "capabilities": {},
            "clientInfo": {"name": "x", "version": "1"}}}
        st, _, _, _ = post(self.port, body, headers={"Host": "evil.example.com"})
        self.assertEqual(st, 403)
        st, _, _, _ = post(self.port, body, headers={"Origin": "http://evil.example.com"})
        self.assertEqual(st, 403)
        st, _, _, _ = post(self.port, body, headers={"Host": "evil.example.com",
                                                      "Origin": "http://evil.example.com"})
        self.assertEqual(st, 403)
        st, hd, _, _ = post(self.port, body, headers={
            "Host": "127.0.0.1:%d" % self.port, "Origin": "http://127.0.0.1:%d" % self.port})
        self.assertEqual(st, 200)
        self.assertEqual(hd.get("access-control-allow-origin"), "http://127.0.0.1:%d" % self.port)
        st, hd, _, _ = post(self.port, body, headers={"Host": "localhost:%d" % self.port})
        self.assertEqual(st, 200)

    def test_cors_preflight_and_security_headers(self):
        origin = "http://localhost:%d" % self.port
        st, hd, _ = lib.http_request(self.port, "OPTIONS", "/mcp", headers={
            "Origin": origin, "Access-Control-Request-Method": "POST"})
        self.assertEqual(st, 204)
        self.assertEqual(hd.get("access-control-allow-origin"), origin)
        self.assertIn("Mcp-Session-Id", hd.get("access-control-allow-headers", ""))
        self.assertIn("DELETE", hd.get("access-control-allow-methods", ""))
        st, _, _ = lib.http_request(self.port, "OPTIONS", "/mcp", headers={
            "Origin": "https://evil.example.com"})
        self.assertEqual(st, 403)
        st, hd, _, _ = rpc(self.port, "ping", sid=self.sid, headers={"Origin": origin})
        self.assertEqual(st, 200)
        self.assertIn("Mcp-Session-Id", hd.get("access-control-expose-headers", ""))
        self.assertIn("no-store", hd.get("cache-control", ""))
        self.assertEqual(hd.get("x-content-type-options"), "nosniff")

    def test_413_body_too_large(self):
        big = {"jsonrpc": "2.0", "id": 1, "method": "ping", "params": {"x": "a" * 5000}}
        st, _, _, _ = post(self.port, big, self.sid, lib.PROTOCOL)
        self.assertEqual(st, 413)

    def test_413_chunked_body_too_large(self):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        try:
            s.sendall(b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"
                      b"Content-Type: application/json\r\n\r\n")
            chunk = b"a" * 3000
            s.sendall(b"%x\r\n%s\r\n%x\r\n%s\r\n" % (len(chunk), chunk, len(chunk), chunk))
            data = s.recv(4096)
        finally:
            s.close()
        self.assertTrue(data.startswith(b"HTTP/1.1 413"), data[:80])

    def test_431_header_too_large(self):
        st, _, _, _ = post(self.port, "{}", self.sid, lib.PROTOCOL, headers={"X-Pad": "p" * 3000})
        self.assertEqual(st, 431)

    def test_400_malformed_http(self):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        try:
            s.sendall(b"THIS IS NOT HTTP\r\n\r\n")
            data = s.recv(4096)
        finally:
            s.close()
        self.assertTrue(data.startswith(b"HTTP/1.1 400"), data[:80])

    def test_405_other_methods(self):
        st, hd, _ = lib.http_request(self.port, "PUT", "/mcp", body="{}", headers={})
        self.assertEqual(st, 405)
        self.assertIn("POST", hd.get("allow", ""))

    # ---- JSON-RPC errors ----

    def test_32700_malformed_json(self):
        st, _, msgs, _ = post(self.port, '{"jsonrpc": "2.0", "id": 1, "method": ', self.sid,
                              lib.PROTOCOL)
        self.assertEqual(st, 400)
        self.assertRpcError(msgs, -32700)
        self.assertIsNone(msgs[0]["id"])

    def test_32700_too_deep(self):
        st, _, msgs, _ = post(self.port, "[" * 200 + "]" * 200, self.sid, lib.PROTOCOL)
        self.assertEqual(st, 400)
        self.assertRpcError(msgs, -32700, "nesting")

    def test_32600_invalid_request(self):
        for bad in ({"jsonrpc": "1.0", "id": 1, "method": "ping"},
                    {"jsonrpc": "2.0", "id": None, "method": "ping"},
                    {"jsonrpc": "2.0", "id": 1, "method": 5},
                    {"jsonrpc": "2.0", "id": 1},
                    "[]", "42"):
            st, _, msgs, raw = post(self.port, bad, self.sid, lib.PROTOCOL)
            self.assertEqual(st, 400, (bad, raw))
            self.assertRpcError(msgs, -32600)

    def test_32601_unknown_method(self):
        st, _, msgs, _ = rpc(self.port, "no/such/method", sid=self.sid, id="abc")
        self.assertEqual(st, 200)
        self.assertRpcError(msgs, -32601)
        self.assertEqual(msgs[0]["id"], "abc")

    def test_32602_unknown_tool_and_bad_params(self):
        st, _, msgs, _ = rpc(self.port, "tools/call", {"name": "no_such_tool"}, sid=self.sid)
        self.assertRpcError(msgs, -32602, "Unknown tool")
        st, _, msgs, _ = rpc(self.port, "tools/call", {"name": 5}, sid=self.sid)
        self.assertRpcError(msgs, -32602)
        st, _, msgs, _ = rpc(self.port, "tools/call",
                             {"name": "test_simple_text", "arguments": [1]}, sid=self.sid)
        self.assertRpcError(msgs, -32602, "arguments must be an object")
        st, _, msgs, _ = rpc(self.port, "tools/list", {"cursor": "bogus"}, sid=self.sid)
        self.assertRpcError(msgs, -32602, "cursor")
        st, _, msgs, _ = rpc(self.port, "logging/setLevel", {"level": "loud"}, sid=self.sid)
        self.assertRpcError(msgs, -32602)
        st, _, msgs, _ = rpc(self.port, "prompts/get", {"name": "test_prompt_with_arguments",
                                                        "arguments": {"arg1": "x"}}, sid=self.sid)
        self.assertRpcError(msgs, -32602)
        st, _, msgs, _ = rpc(self.port, "resources/read", {"uri": "test://nope"}, sid=self.sid)
        self.assertRpcError(msgs, -32002, "test://nope")

    def test_32602_argument_path_on_2025_06_18(self):
        sid, init = initialize(self.port, version="2025-06-18")
        self.assertEqual(init["protocolVersion"], "2025-06-18")
        st, _, msgs, _ = rpc(self.port, "tools/call", {"name": "test_structured_output",
                                                       "arguments": {"text": 5}},
                             sid=sid, version="2025-06-18")
        self.assertRpcError(msgs, -32602, "arguments.text")
        st, _, msgs, _ = rpc(self.port, "tools/call", {"name": "test_structured_output",
                                                       "arguments": {"text": "x", "extra": 1}},
                             sid=sid, version="2025-06-18")
        self.assertRpcError(msgs, -32602, "extra")
        st, _, msgs, _ = rpc(self.port, "tools/call", {"name": "test_structured_output",
                                                       "arguments": {}},
                             sid=sid, version="2025-06-18")
        self.assertRpcError(msgs, -32602, "text")

    def test_validation_is_tool_error_on_2025_11_25(self):
        st, _, msgs, _ = rpc(self.port, "tools/call", {"name": "test_structured_output",
                                                       "arguments": {"text": 5}}, sid=self.sid)
        r = msgs[0]["result"]
        self.assertTrue(r["isError"])
        self.assertIn("arguments.text", r["content"][0]["text"])

    def test_batch_rejected_on_2025_06_18_and_later(self):
        batch = [{"jsonrpc": "2.0", "id": 1, "method": "ping"},
                 {"jsonrpc": "2.0", "id": 2, "method": "ping"}]
        for v in ("2025-11-25", "2025-06-18"):
            sid, _ = initialize(self.port, version=v)
            st, _, msgs, _ = post(self.port, batch, sid, v)
            self.assertEqual(st, 400, v)
            self.assertRpcError(msgs, -32600)

    def test_batch_on_2025_03_26(self):
        sid, init = initialize(self.port, version="2025-03-26")
        self.assertEqual(init["protocolVersion"], "2025-03-26")
        batch = [{"jsonrpc": "2.0", "id": 1, "method": "ping"},
                 {"jsonrpc": "2.0", "method": "notifications/initialized"},
                 {"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                  "params": {"name": "test_simple_text", "arguments": {}}},
                 {"jsonrpc": "2.0", "id": 3, "method": "nope"},
                 {"bad": True}]
        st, _, msgs, raw = post(self.port, batch, sid, "2025-03-26")
        self.assertEqual(st, 200, raw)
        by_id = {json.dumps(m.get("id")): m for m in msgs}
        self.assertEqual(len(msgs), 4, msgs)
        self.assertEqual(by_id["1"]["result"], {})
        self.assertIn("simple text", by_id["2"]["result"]["content"][0]["text"])
        self.assertEqual(by_id["3"]["error"]["code"], -32601)
        self.assertEqual(by_id["null"]["error"]["code"], -32600)
        # only notifications -> 202
        st, _, _, _ = post(self.port, [{"jsonrpc": "2.0", "method": "notifications/x"}], sid,
                           "2025-03-26")
        self.assertEqual(st, 202)

    # ---- lifecycle and negotiation ----

    def test_version_negotiation(self):
        for want, got in (("2025-11-25", "2025-11-25"), ("2025-06-18", "2025-06-18"),
                          ("2025-03-26", "2025-03-26"), ("2024-11-05", "2024-11-05"),
                          ("2099-01-01", "2025-11-25"), ("1.0", "2025-11-25")):
            _, init = initialize(self.port, version=want)
            self.assertEqual(init["protocolVersion"], got, want)
        self.assertEqual(self.init["serverInfo"]["name"], "csmcp")
        for cap in ("tools", "resources", "prompts", "logging", "completions"):
            self.assertIn(cap, self.init["capabilities"])

    def test_session_id_is_visible_ascii_and_unique(self):
        a, _ = initialize(self.port)
        b, _ = initialize(self.port)
        self.assertNotEqual(a, b)
        for sid in (a, b):
            self.assertTrue(all(0x21 <= ord(c) <= 0x7e for c in sid), sid)
            self.assertGreaterEqual(len(sid), 40)

    def test_notification_and_response_get_202(self):
        st, _, _, raw = post(self.port, {"jsonrpc": "2.0", "method": "notifications/whatever"},
                             self.sid, lib.PROTOCOL)
        self.assertEqual((st, raw), (202, b""))
        st, _, _, _ = post(self.port, {"jsonrpc": "2.0", "id": "srv-0000000000000000-1",
                                       "result": {}}, self.sid, lib.PROTOCOL)
        self.assertEqual(st, 202)

    def test_ping_and_older_protocol_tool_results(self):
        st, _, msgs, _ = rpc(self.port, "ping", sid=self.sid)
        self.assertEqual(msgs[0]["result"], {})
        sid, _ = initialize(self.port, version="2025-03-26")
        st, _, msgs, _ = rpc(self.port, "tools/call", {"name": "test_structured_output",
                                                       "arguments": {"text": "ab"}},
                             sid=sid, version="2025-03-26")
        self.assertNotIn("structuredContent", msgs[0]["result"])
        st, _, msgs, _ = rpc(self.port, "tools/call", {"name": "test_structured_output",
                                                       "arguments": {"text": "ab"}}, sid=self.sid)
        self.assertEqual(msgs[0]["result"]["structuredContent"], {"echo": "ab", "length": 2})

    def test_get_stream_opens_with_priming_event(self):
        s = SseStream(self.port, "GET", mcp_headers(self.sid, accept="text/event-stream"),
                      timeout=5)
        try:
            self.assertEqual(s.status, 200)
            self.assertTrue(s.headers["content-type"].startswith("text/event-stream"))
            ev = s.next_event()
            self.assertIn("id", ev)
            self.assertEqual(ev.get("data", ""), "")
        finally:
            s.close()

    def test_tools_list_pagination_and_shape(self):
        names, cursor, pages = [], None, 0
        while True:
            st, _, msgs, _ = rpc(self.port, "tools/list", {"cursor": cursor} if cursor else {},
                                 sid=self.sid)
            r = msgs[0]["result"]
            for t in r["tools"]:
                self.assertTrue(t["description"])
                self.assertEqual(t["inputSchema"]["type"], "object")
                self.assertIn("readOnlyHint", t["annotations"])
                names.append(t["name"])
            pages += 1
            cursor = r.get("nextCursor")
            if not cursor or pages > 50:
                break
        self.assertEqual(len(names), len(set(names)))
        self.assertIn("json_schema_2020_12_tool", names)

    def test_keepalive_connection_serves_many_requests(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            for i in range(20):
                conn.request("POST", "/mcp", body=json.dumps(
                    {"jsonrpc": "2.0", "id": i, "method": "ping"}),
                    headers=mcp_headers(self.sid))
                r = conn.getresponse()
                self.assertEqual(r.status, 200)
                self.assertEqual(json.loads(r.read())["id"], i)
        finally:
            conn.close()


class McpAuthRequired(lib.TestCase):
    """With auth.required, a request without a token is 401 with RFC 9728 discovery."""

    def test_401_with_resource_metadata(self):
        with lib.Csmcpd(workers=1, fixtures=True, auth=True) as d:
            st, hd, _, _ = post(d.port, {"jsonrpc": "2.0", "id": 1, "method": "initialize",
                                         "params": {"protocolVersion": lib.PROTOCOL,
                                                    "capabilities": {},
                                                    "clientInfo": {"name": "x", "version": "1"}}})
            self.assertEqual(st, 401)
            self.assertIn("resource_metadata=", hd.get("www-authenticate", ""))
            st, hd, _, _ = post(d.port, {"jsonrpc": "2.0", "id": 1, "method": "ping"},
                                headers={"Authorization": "Bearer csk_not_a_real_key"})
            self.assertEqual(st, 401)
            self.assertIn("Bearer", hd.get("www-authenticate", ""))


if __name__ == "__main__":
    unittest.main()


class McpRateLimitAndDrain(lib.TestCase):
    def test_429_when_rate_limited(self):
        d = lib.Csmcpd(workers=2, fixtures=True, auth=False,
                       conf={"ratelimit": {"enabled": True, "key_per_minute": 8}})
        with d:
            # a full bucket to start from, whatever earlier tests left for "anonymous"
            redis_command("DEL", "csmcp:rl:{anonymous}")
            sid, _ = initialize(d.port)  # 2 requests
            statuses = [rpc(d.port, "ping", sid=sid)[0] for _ in range(12)]
            self.assertIn(429, statuses)
            self.assertEqual(statuses[:5], [200] * 5, statuses)
            st, hd, msgs, _ = rpc(d.port, "tools/call", {"name": "test_simple_text"}, sid=sid,
                                  id=77)
            self.assertEqual(st, 429)
            self.assertGreaterEqual(int(hd.get("retry-after", "0")), 1)
            self.assertEqual(msgs[0]["id"], 77)
        redis_command("DEL", "csmcp:rl:{anonymous}")  # later tests start from a full bucket
        assert_no_crash(d)

    def test_sigterm_ends_streams_and_exits_0(self):
        d = lib.Csmcpd(workers=2, fixtures=True, auth=False)
        d.start()
        try:
            sid, _ = initialize(d.port)
            streams = [SseStream(d.port, "GET", mcp_headers(sid, accept="text/event-stream"))
                       for _ in range(3)]
            for s in streams:
                self.assertEqual(s.status, 200)
                self.assertIn("id", s.next_event())
            d.signal(signal.SIGTERM)
            for s in streams:
                # the stream ends cleanly (terminal chunk) instead of hanging or resetting
                self.assertIsNone(s.next_event())
                s.close()
            self.assertEqual(d.proc.wait(15), 0)
        finally:
            d.stop()
        assert_no_crash(d)


class HttpLimits(lib.TestCase):
    """Timeouts and the per-worker connection cap of the worker's HTTP server."""

    @classmethod
    def setUpClass(cls):
        cls.d = lib.Csmcpd(workers=1, fixtures=True, auth=False,
                           conf={"http": {"read_timeout": 1, "idle_timeout": 2},
                                 "server": {"max_connections": 16}})
        cls.d.start()

    @classmethod
    def tearDownClass(cls):
        cls.d.stop()
        assert_no_crash(cls.d)

    def test_408_when_request_is_too_slow(self):
        s = socket.create_connection(("127.0.0.1", self.d.port), timeout=5)
        try:
            s.sendall(b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 10\r\n\r\n{")
            data = s.recv(4096)
        finally:
            s.close()
        self.assertTrue(data.startswith(b"HTTP/1.1 408"), data[:60])

    def test_idle_keepalive_connection_is_closed(self):
        s = socket.create_connection(("127.0.0.1", self.d.port), timeout=6)
        try:
            s.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            self.assertIn(b"200 OK", s.recv(4096))
            t0 = time.monotonic()
            self.assertEqual(s.recv(4096), b"")  # server closes after idle_timeout
            self.assertLess(time.monotonic() - t0, 5)
        finally:
            s.close()

    def test_pipelined_requests_answered_in_order(self):
        s = socket.create_connection(("127.0.0.1", self.d.port), timeout=5)
        try:
            s.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
                      b"GET /nope HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
                      b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        finally:
            s.close()
        statuses = re.findall(rb"HTTP/1.1 (\d{3}) ", data)
        self.assertEqual(statuses, [b"200", b"404", b"200"], data)
        self.assertIn(b"Connection: close", data.split(b"HTTP/1.1 200")[-1])

    def test_max_connections(self):
        held = [socket.create_connection(("127.0.0.1", self.d.port), timeout=5)
                for _ in range(16)]
        try:
            for s in held:
                s.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                self.assertIn(b"200 OK", s.recv(4096))
            extra = socket.create_connection(("127.0.0.1", self.d.port), timeout=5)
            extra.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            extra.settimeout(0.5)
            with self.assertRaises(socket.timeout):
                extra.recv(4096)  # not accepted while 16 are open
            held.pop().close()
            extra.settimeout(5)
            self.assertIn(b"200 OK", extra.recv(4096))
            extra.close()
        finally:
            for s in held:
                s.close()
