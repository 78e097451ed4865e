"""Hostile input: malformed HTTP, oversized headers and bodies, deep and huge JSON, invalid
UTF-8, SQL-injection strings in every string argument of every tool, header injection,
slowloris, and 10,000 random fuzz cases. Every case gets a correct error, and no worker
crashes or restarts (the same worker PIDs serve before and after, the supervisor logs no exit).
"""
import http.client
import json
import random
import socket
import time

import lib
import sec_util as su

ACCEPT = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
LIMITS = {"max_header_size": 8192, "max_body_size": 262144, "max_json_depth": 32,
          "max_string_length": 8192, "read_timeout": 2, "idle_timeout": 5}
MAXCONN = 40
SQLI = ["' OR '1'='1", "'; DROP TABLE accounts; --", "1; SELECT pg_sleep(5)--",
        "\\'; DELETE FROM api_keys WHERE ''='", "$$; DROP SCHEMA csmcp CASCADE; $$",
        "Robert'); DROP TABLE audit_log;--", "%' UNION SELECT token_hash FROM api_keys --"]


def raw(port, data, timeout=5, read_all=False):
    """Sends raw bytes; returns the status code of the first response, or None if the server
    closed without answering."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
        buf = b""
        try:
            while b"\r\n" not in buf:
                chunk = s.recv(4096)
                if not chunk:
                    break
                buf += chunk
        except (ConnectionResetError, socket.timeout):
            pass
    if not buf.startswith(b"HTTP/1."):
        return None, buf
    return int(buf.split(b" ", 2)[1]), buf


class Hostile(lib.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = lib.Csmcpd(workers=2, auth=True, conf={"http": LIMITS, "server": {
            "max_connections": MAXCONN}, "ratelimit": {
            "key_per_minute": 10000000, "tool_per_minute": 10000000,
            "write_per_minute": 10000000}}).start()
        cls.token = su.create_key(cls.d.conf_path, "read,write,admin", "hostile")
        time.sleep(0.5)
        cls.pids = lib.worker_pids(cls.d.proc.pid)
        assert len(cls.pids) == 2, cls.pids

    @classmethod
    def tearDownClass(cls):
        cls.d.stop()

    def tearDown(self):
        # after every case: same workers, no crash or restart logged, still serving
        self.assertEqual(lib.worker_pids(self.d.proc.pid), self.pids, self.d.log_tail())
        log = open(self.d.log_path, "rb").read()
        self.assertNotIn(b"-> EXITED", log)
        self.assertNotIn(b"AddressSanitizer", log)
        self.assertNotIn(b"runtime error", log)
        self.assertEqual(self.d.get("/health")[0], 200)

    def hdrs(self, session=None):
        h = dict(ACCEPT)
        h["Authorization"] = "Bearer " + self.token
        if session:
            h["Mcp-Session-Id"] = session
            h["MCP-Protocol-Version"] = lib.PROTOCOL
        return h

    def test_malformed_http(self):
        cases = [
            b"GARBAGE\r\n\r\n",
            b"GET / HTTP/9.9\r\n\r\n",
            b"GET /mcp HTTP/1.1\r\nHost 127.0.0.1\r\n\r\n",
            b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: -5\r\n\r\n",
            b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 99999999999999999999\r\n\r\n",
            b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"zz\r\nabc\r\n0\r\n\r\n",
            b"GET /\x00mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
            b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
            b"\xff\xfe\xfd\r\n\r\n",
            b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"X: " + b"y" * 9000 + b"\r\n\r\n",
            b"GET /health HTTP/1.1\r\n" + b"".join(b"H%d: v\r\n" % i for i in range(2000)) + b"\r\n",
        ]
        for c in cases:
            st, buf = raw(self.d.port, c)
            self.assertTrue(st is None or 400 <= st < 500, (c[:60], st, buf[:200]))

    def test_chunked_trailers_are_not_header_fields(self):
        # Trailer fields after a chunked body are counted against the head limit and
        # dropped: a trailer never authenticates, names a session or supplies a Host
        # (fuzz_http found a trailer 'Host' read as an unterminated string).
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "ping"}).encode()
        chunked = b"%x\r\n%s\r\n0\r\n" % (len(body), body)
        trailers = (b"Authorization: Bearer " + self.token.encode() + b"\r\n"
                    b"Host: " + b"x" * 120 + b"\r\n\r\n")
        # HTTP/1.1 with a Host but no Authorization field: 401; HTTP/1.0 without a Host
        # field: 403 (DNS-rebinding rule) - the trailers supply neither.
        for line, want in ((b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n", 401),
                           (b"POST /mcp HTTP/1.0\r\n", 403)):
            st, buf = raw(self.d.port, line + b"Content-Type: application/json\r\n"
                          b"Accept: application/json, text/event-stream\r\n"
                          b"Transfer-Encoding: chunked\r\n\r\n" + chunked + trailers)
            self.assertEqual(st, want, (line, buf[:300]))
        st, buf = raw(self.d.port, b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                      b"Transfer-Encoding: chunked\r\n\r\n" + chunked +
                      b"X: " + b"y" * 9000 + b"\r\n\r\n")
        self.assertTrue(st is None or st == 431, (st, buf[:200]))

    def test_body_limit_and_bad_content(self):
        h = self.hdrs()
        st, _, _ = lib.http_request(self.d.port, "POST", "/mcp", body="x" * 300000, headers=h)
        self.assertEqual(st, 413)
        for body, code in ((b"{not json", -32700), (b'{"jsonrpc":"2.0","id":1,"method":"x\xff\xfe"}',
                                                     -32700), (b"[" * 5000 + b"]" * 5000, None),
                           (json.dumps({"jsonrpc": "2.0", "id": 1, "method": "ping",
                                        "params": {"s": "a" * 20000}}).encode(), None)):
            st, _, data = lib.http_request(self.d.port, "POST", "/mcp", body=body, headers=h)
            self.assertTrue(400 <= st < 500, (body[:40], st))
            if code is not None:
                self.assertEqual(json.loads(data)["error"]["code"], code, data)

    def test_sql_injection_in_every_string_argument(self):
        s = lib.McpSession(self.d.port, token=self.token)
        try:
            tools, cursor = [], None
            for _ in range(100):  # every page
                page = s.request("tools/list", {"cursor": cursor} if cursor else {})
                tools += page["tools"]
                cursor = page.get("nextCursor")
                if not cursor:
                    break
            n_calls = 0
            for t in tools:
                props = t["inputSchema"].get("properties", {})
                strings = [k for k, v in props.items() if v.get("type") == "string"]
                if t["name"] == "erase_client_data":
                    continue  # covered by its own pattern; never erase in a shared database
                for k in strings:
                    for p in SQLI[:3]:
                        args = {k: p}
                        st, _, msgs = s.request_raw("tools/call", {"name": t["name"],
                                                                   "arguments": args})
                        n_calls += 1
                        self.assertEqual(st, 200, (t["name"], k, p))
                        m = msgs[-1]
                        text = json.dumps(m)
                        self.assertNotIn("syntax error", text)
                        self.assertNotIn("42601", text)  # SQLSTATE syntax_error
            self.assertGreater(n_calls, 0)
        finally:
            s.close()
        # nothing was dropped
        out = su.psql(lib.database_url(), "SELECT to_regclass('accounts') IS NOT NULL AND "
                      "to_regclass('api_keys') IS NOT NULL AND to_regclass('audit_log') IS NOT NULL")
        self.assertEqual(out.strip(), "t")

    def test_header_injection_not_reflected(self):
        for name, value in (("Origin", b"http://127.0.0.1\nSet-Cookie: pwn=1"),
                            ("Host", b"127.0.0.1\rX-Injected: 1"),
                            ("Mcp-Session-Id", b"abc\r\nX-Injected: 1")):
            req = (b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                   b"Accept: application/json, text/event-stream\r\nAuthorization: Bearer "
                   + self.token.encode() + b"\r\n" + name.encode() + b": " + value +
                   b"\r\nContent-Length: 2\r\n\r\n{}")
            st, buf = raw(self.d.port, req)
            head = buf.split(b"\r\n\r\n", 1)[0].lower()
            self.assertNotIn(b"\r\nset-cookie", head)
            self.assertNotIn(b"\r\nx-injected", head)

    def test_security_headers(self):
        st, h, _ = lib.http_request(self.d.port, "POST", "/mcp", body="{}", headers=self.hdrs())
        self.assertIn("no-store", h.get("cache-control", ""))
        self.assertEqual(h.get("x-content-type-options"), "nosniff")
        self.assertIn("frame-ancestors 'none'", h.get("content-security-policy", ""))

    def test_dns_rebinding_refused(self):
        h = self.hdrs()
        h["Host"] = "evil.example.com"
        h["Origin"] = "http://evil.example.com"
        st, _, _ = lib.http_request(self.d.port, "POST", "/mcp", body="{}", headers=h)
        self.assertEqual(st, 403)

    def test_slowloris(self):
        socks = []
        for _ in range(20):
            s = socket.create_connection(("127.0.0.1", self.d.port), timeout=10)
            s.sendall(b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            socks.append(s)
        t0 = time.monotonic()
        closed = set()
        while time.monotonic() - t0 < 8 and len(closed) < len(socks):
            for i, s in enumerate(socks):
                if i in closed:
                    continue
                try:
                    s.sendall(b"X")
                    s.settimeout(0.01)
                    if s.recv(4096) == b"":
                        closed.add(i)
                except (socket.timeout, BlockingIOError):
                    pass
                except OSError:
                    closed.add(i)
            # the server keeps serving others meanwhile
            t1 = time.monotonic()
            self.assertEqual(self.d.get("/health")[0], 200)
            self.assertLess(time.monotonic() - t1, 1.0)
            time.sleep(0.3)
        elapsed = time.monotonic() - t0
        for s in socks:
            s.close()
        self.assertEqual(len(closed), len(socks), "slow connections still open after %.1fs"
                         % elapsed)
        self.assertLess(elapsed, LIMITS["read_timeout"] + 4)

    def test_connection_flood(self):
        """3x the per-worker connection limit on 2 workers: the excess waits in the kernel
        backlog (never more than max_connections served at once per worker), nothing crashes,
        and once the flood goes away the server answers at once."""
        socks = []
        try:
            for _ in range(3 * MAXCONN):
                s = socket.create_connection(("127.0.0.1", self.d.port), timeout=5)
                s.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                socks.append(s)
            served = 0
            deadline = time.monotonic() + 2
            for s in socks:
                s.settimeout(max(0.01, deadline - time.monotonic()))
                try:
                    if s.recv(64).startswith(b"HTTP/1.1 200"):
                        served += 1
                except (socket.timeout, OSError):
                    pass
            self.assertGreater(served, 0)
            self.assertLessEqual(served, 2 * MAXCONN)
        finally:
            for s in socks:
                s.close()
        lib.wait_until(lambda: self.d.get("/health", timeout=2)[0] == 200, 10,
                       what="health after the flood")

    def test_made_up_key_flood(self):
        """Unauthenticated requests are not rate limited yet, so a flood of made-up API keys
        must not turn into unbounded database work: every one gets 401 (or 503 when the
        worker's in-flight lookup cap is reached), and the server stays healthy."""
        socks, statuses = [], {}
        for i in range(150):
            s = socket.create_connection(("127.0.0.1", self.d.port), timeout=10)
            key = "csk_%012x_%s" % (random.getrandbits(48), "A" * 43)
            s.sendall(b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/"
                      b"json\r\nAccept: application/json, text/event-stream\r\nAuthorization: "
                      b"Bearer " + key.encode() + b"\r\nContent-Length: 2\r\n\r\n{}")
            socks.append(s)
        for s in socks:
            try:
                head = s.recv(4096)
                st = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/1.1") else None
            except (OSError, ValueError, IndexError):
                st = None
            statuses[st] = statuses.get(st, 0) + 1
            s.close()
        self.assertTrue(set(statuses) <= {401, 429, 503}, statuses)  # 429: auth.failed_per_minute
        print("\n    150 concurrent made-up keys: %s" % statuses)

    def test_ten_thousand_random_cases(self):
        rnd = random.Random(20261126)
        s = lib.McpSession(self.d.port, token=self.token)
        sid = s.session_id
        s.close()
        s = lib.McpSession(self.d.port, token=self.token)
        sid = s.session_id
        methods = ["initialize", "ping", "tools/list", "tools/call", "resources/list",
                   "prompts/list", "logging/setLevel", "completion/complete", "x", "", None]
        values = [None, True, 0, -1, 2 ** 63, 1e308, "", "a" * 300, "\u0000", "\ud7ff", [], {},
                  [[[[]]]], {"a": {"b": {"c": None}}}, SQLI[0], "../../etc/passwd"]

        def rand_value(depth=0):
            if depth > 3 or rnd.random() < 0.5:
                return rnd.choice(values)
            if rnd.random() < 0.5:
                return [rand_value(depth + 1) for _ in range(rnd.randint(0, 3))]
            return {rnd.choice(["name", "arguments", "cursor", "level", "x", "client_id"]):
                    rand_value(depth + 1) for _ in range(rnd.randint(0, 3))}

        def case():
            msg = {"jsonrpc": rnd.choice(["2.0", "2.0", "1.0", None]),
                   "id": rnd.choice([1, "a", None, [], 1.5, -7]),
                   "method": rnd.choice(methods)}
            if rnd.random() < 0.7:
                msg["params"] = rand_value()
                if msg["method"] == "tools/call" and isinstance(msg["params"], dict):
                    msg["params"]["name"] = rnd.choice(["export_client_data", "nope",
                                                        "erase_client_data", 5])
            body = json.dumps(msg).encode()
            r = rnd.random()
            if r < 0.25 and body:  # byte flips
                b = bytearray(body)
                for _ in range(rnd.randint(1, 4)):
                    b[rnd.randrange(len(b))] = rnd.randrange(256)
                body = bytes(b)
            elif r < 0.35:
                body = body[:rnd.randrange(len(body) + 1)]
            elif r < 0.4:
                body = bytes(rnd.randrange(256) for _ in range(rnd.randint(0, 64)))
            if rnd.random() < 0.5 and b'"erase_client_data"' in body:
                body = body.replace(b'"erase_client_data"', b'"nope"')
            return body

        conn = http.client.HTTPConnection("127.0.0.1", self.d.port, timeout=30)
        statuses = {}
        h = self.hdrs(sid)
        t0 = time.monotonic()
        for i in range(10000):
            body = case()
            for attempt in range(2):
                try:
                    conn.request("POST", "/mcp", body=body, headers=h)
                    r = conn.getresponse()
                    data = r.read()
                    break
                except (http.client.HTTPException, OSError):
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", self.d.port, timeout=30)
            else:
                self.fail("case %d: no response: %r" % (i, body[:200]))
            statuses[r.status] = statuses.get(r.status, 0) + 1
            self.assertIn(r.status, (200, 202, 400, 404, 406, 413, 415, 422), (i, body[:200],
                                                                                 data[:300]))
            if r.status == 400 and data:
                # a correct error: JSON-RPC error object, never a stack trace or SQL text
                err = json.loads(data)
                self.assertIn("error", err)
                self.assertLess(err["error"]["code"], -32000 + 1)
        conn.close()
        s.close()
        print("\n    10000 fuzz cases in %.1fs: %s" % (time.monotonic() - t0, statuses))
