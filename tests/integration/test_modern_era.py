"""MCP 2026-07-28 (modern, stateless) beside the legacy revisions on one /mcp (owner: modern).

Raw HTTP against csmcpd with 4 workers: every era-detection rule, every new error path
(-32602/-32020/-32021/-32022, 404 -32601, -32602 resource not found, modern error codes),
discover, caching hints, resultType, the input-required flow with its signed requestState
(tampered, foreign, expired, oversized), per-request auth, scopes, rate limit and audit, and
that no modern request touches the session store.
"""
import base64
import json
import socket
import time

import lib
import sec_util as su
from lib import mcp_post as post, redis_command

V = "2026-07-28"
META = {"io.modelcontextprotocol/protocolVersion": V,
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "test_modern_era", "version": "1"}}


def hdrs(method, name=None, version=V, token=None, **extra):
    h = {"MCP-Protocol-Version": version, "Mcp-Method": method}
    if name is not None:
        h["Mcp-Name"] = name
    if token:
        h["Authorization"] = "Bearer " + token
    h.update(extra)
    return h


def modern(port, method, params=None, id=1, meta=None, headers=None, token=None):
    """A well-formed modern request (headers from the body unless given)."""
    p = dict(params or {})
    p["_meta"] = dict(META, **(meta or {}))
    name = p.get("uri") if method == "resources/read" else p.get("name")
    if method not in ("tools/call", "prompts/get", "resources/read"):
        name = None
    h = headers if headers is not None else hdrs(method, name, token=token)
    return post(port, {"jsonrpc": "2.0", "id": id, "method": method, "params": p}, headers=h)


class ModernEra(lib.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = lib.Csmcpd(workers=4, fixtures=True, auth=False)
        cls.d.start()
        cls.port = cls.d.port

    @classmethod
    def tearDownClass(cls):
        cls.d.stop()
        lib.assert_no_crash(cls.d)

    def one(self, res, status=200):
        st, hd, msgs, raw = res
        self.assertEqual(st, status, raw)
        self.assertEqual(len(msgs), 1, raw)
        return msgs[0]

    def assertError(self, res, status, code, contains=None, id=1):
        m = self.one(res, status)
        self.assertEqual(m["error"]["code"], code, m)
        self.assertEqual(m["id"], id, m)  # errors carry the request id
        if contains:
            self.assertIn(contains, m["error"]["message"])
        return m["error"]

    # ---- era detection ----

    def test_rule1_meta_version_selects_modern_even_with_a_session_id(self):
        sid, _ = lib.mcp_initialize(self.port)
        m = self.one(modern(self.port, "tools/list", headers=dict(
            hdrs("tools/list"), **{"Mcp-Session-Id": sid})))
        self.assertEqual(m["result"]["resultType"], "complete")
        st, hd, _, _ = modern(self.port, "tools/list")
        self.assertNotIn("mcp-session-id", hd)  # never minted or echoed

    def test_rule2_initialize_without_meta_is_legacy(self):
        st, hd, msgs, raw = post(self.port, {
            "jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                       "clientInfo": {"name": "x", "version": "1"}}},
            headers={"MCP-Protocol-Version": V})
        self.assertEqual(st, 200, raw)
        self.assertIn("mcp-session-id", hd)
        self.assertEqual(msgs[0]["result"]["protocolVersion"], "2025-11-25")
        self.assertNotIn("resultType", msgs[0]["result"])

    def test_rule2_session_header_keeps_legacy_rules(self):
        sid, _ = lib.mcp_initialize(self.port)
        # unknown version header on a session: the legacy 400 (-32000), not a modern error
        st, _, msgs, raw = post(self.port, {"jsonrpc": "2.0", "id": 3, "method": "tools/list"},
                                sid, "1999-01-01")
        self.assertEqual(st, 400, raw)
        self.assertEqual(msgs[0]["error"]["code"], -32000)
        st, _, msgs, raw = post(self.port, {"jsonrpc": "2.0", "id": 3, "method": "ping"},
                                sid, "2025-11-25")
        self.assertEqual((st, msgs[0]["result"]), (200, {}), raw)

    def test_rule3_modern_version_header_without_meta(self):
        err = self.assertError(post(self.port, {"jsonrpc": "2.0", "id": 1, "method": "tools/list",
                                                "params": {}},
                                    headers=hdrs("tools/list")), 400, -32602, "_meta")
        self.assertIn("params._meta is required", err["message"])

    def test_rule3_legacy_version_header_without_session_stays_legacy(self):
        st, _, msgs, raw = post(self.port, {"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                                version="2025-11-25")
        self.assertEqual(st, 400, raw)
        self.assertIn("Mcp-Session-Id header is required", msgs[0]["error"]["message"])

    def test_rule4_discover_without_anything_is_modern(self):
        self.assertError(post(self.port, {"jsonrpc": "2.0", "id": 1, "method": "server/discover"}),
                         400, -32602, "_meta")

    def test_rule5_plain_request_is_legacy(self):
        st, _, msgs, raw = post(self.port, {"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
        self.assertEqual(st, 400, raw)
        self.assertEqual(msgs[0]["error"]["code"], -32000)

    def test_batch_is_never_modern(self):
        body = [{"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": META}}]
        st, _, msgs, raw = post(self.port, body, headers=hdrs("tools/list"))
        self.assertEqual(st, 400, raw)  # legacy: batches need a 2025-03-26 session

    # ---- validation order and error paths ----

    def test_meta_fields_required(self):
        for drop, why in (("io.modelcontextprotocol/protocolVersion", "protocolVersion"),
                          ("io.modelcontextprotocol/clientCapabilities", "clientCapabilities")):
            meta = {k: v for k, v in META.items() if k != drop}
            body = {"jsonrpc": "2.0", "id": 5, "method": "server/discover",
                    "params": {"_meta": meta}}
            self.assertError(post(self.port, body, headers=hdrs("server/discover")), 400, -32602,
                             why, id=5)

    def test_client_info_optional_and_bad_log_level(self):
        meta = {k: v for k, v in META.items() if k != "io.modelcontextprotocol/clientInfo"}
        body = {"jsonrpc": "2.0", "id": 2, "method": "server/discover", "params": {"_meta": meta}}
        self.assertIn("result", self.one(post(self.port, body, headers=hdrs("server/discover"))))
        self.assertError(modern(self.port, "tools/list",
                                meta={"io.modelcontextprotocol/logLevel": "loud"}),
                         400, -32602, "logLevel")

    def test_header_mismatch_and_missing(self):
        body = {"jsonrpc": "2.0", "id": 7, "method": "tools/list", "params": {"_meta": META}}
        self.assertError(post(self.port, body, headers={"Mcp-Method": "tools/list"}), 400,
                         -32020, "MCP-Protocol-Version header is required", id=7)
        self.assertError(post(self.port, body, headers=hdrs("tools/list", version="2025-11-25")),
                         400, -32020, "does not match", id=7)
        self.assertError(post(self.port, body, headers={"MCP-Protocol-Version": V}), 400, -32020,
                         "Mcp-Method header is required", id=7)
        self.assertError(post(self.port, body, headers=hdrs("prompts/list")), 400, -32020,
                         "Mcp-Method header value 'prompts/list'", id=7)
        call = {"jsonrpc": "2.0", "id": 8, "method": "tools/call",
                "params": {"name": "test_simple_text", "arguments": {}, "_meta": META}}
        self.assertError(post(self.port, call, headers=hdrs("tools/call")), 400, -32020,
                         "Mcp-Name header is required", id=8)
        self.assertError(post(self.port, call, headers=hdrs("tools/call", "test_error_handling")),
                         400, -32020, "does not match body params.name", id=8)
        # header values are case-sensitive; names are not; optional whitespace is not part of it
        self.assertError(post(self.port, call, headers=hdrs("tools/call", "TEST_SIMPLE_TEXT")),
                         400, -32020, id=8)
        m = self.one(post(self.port, call, headers={"mcp-protocol-version": V,
                                                    "MCP-METHOD": "tools/call",
                                                    "mcp-name": "test_simple_text  "}))
        self.assertEqual(m["result"]["content"][0]["type"], "text")

    def test_mcp_name_base64_sentinel(self):
        uri = "test://template/b64-1/data"
        enc = "=?base64?" + base64.b64encode(uri.encode()).decode() + "?="
        m = self.one(modern(self.port, "resources/read", {"uri": uri},
                            headers=hdrs("resources/read", enc)))
        self.assertIn("b64-1", m["result"]["contents"][0]["text"])
        self.assertError(modern(self.port, "resources/read", {"uri": uri},
                                headers=hdrs("resources/read", "=?base64?!!!?=")), 400, -32020)

    def test_mcp_param_headers(self):
        """x-mcp-header parameters: header required when the argument is present, equal after
        decoding (strict padded base64 in the sentinel), integers compared as numbers."""
        args = {"region": "eu-west1", "priority": 3, "query": "q"}

        def call(extra, arguments=args, id=1):
            h = dict(hdrs("tools/call", "test_custom_headers"), **extra)
            return modern(self.port, "tools/call", {"name": "test_custom_headers",
                                                    "arguments": arguments}, headers=h, id=id)
        ok = {"Mcp-Param-Region": "eu-west1", "Mcp-Param-Priority": "3"}
        r = self.one(call(ok))["result"]
        self.assertEqual(json.loads(r["content"][0]["text"]), args)
        self.one(call({"Mcp-Param-Region": "=?base64?ZXUtd2VzdDE=?=",
                       "Mcp-Param-Priority": "3.0"}))  # base64 form; 3.0 == 3
        self.assertError(call({"Mcp-Param-Priority": "3"}), 400, -32020,
                         "Mcp-Param-Region header is required")
        self.assertError(call({"Mcp-Param-Region": "us-east1", "Mcp-Param-Priority": "3"}), 400,
                         -32020, "does not match body arguments.region")
        self.assertError(call({"Mcp-Param-Region": "=?base64?ZXUtd2VzdDE?=",
                               "Mcp-Param-Priority": "3"}), 400, -32020, "base64")  # no padding
        self.assertError(call({"Mcp-Param-Region": "eu-west1", "Mcp-Param-Priority": "4"}), 400,
                         -32020, "arguments.priority")
        # an argument that is absent or null needs no header
        self.one(call({"Mcp-Param-Region": "eu-west1"},
                      arguments={"region": "eu-west1", "query": "q", "verbose": None}))

    def test_unsupported_version(self):
        for v, extra in (("v999.0.0", ""), ("2025-11-25", "legacy era only")):
            body = {"jsonrpc": "2.0", "id": 9, "method": "server/discover",
                    "params": {"_meta": dict(META, **{"io.modelcontextprotocol/protocolVersion": v})}}
            err = self.assertError(post(self.port, body, headers=hdrs("server/discover", version=v)),
                                   400, -32022, extra, id=9)
            self.assertEqual(err["data"]["requested"], v)
            self.assertEqual(err["data"]["supported"][0], V)

    def test_unknown_and_removed_methods_404(self):
        for me in ("initialize", "ping", "logging/setLevel", "resources/subscribe",
                   "resources/unsubscribe", "no/such"):
            self.assertError(modern(self.port, me), 404, -32601, me)

    def test_notifications_and_responses(self):
        st, _, _, raw = post(self.port, {"jsonrpc": "2.0", "method": "notifications/initialized",
                                         "params": {"_meta": META}},
                             headers=hdrs("notifications/initialized"))
        self.assertEqual((st, raw), (202, b""))
        st, _, msgs, raw = post(self.port, {"jsonrpc": "2.0", "id": "srv-1", "result": {}},
                                headers=hdrs("x"))
        self.assertEqual(st, 400, raw)
        self.assertEqual(msgs[0]["error"]["code"], -32600)

    # ---- results ----

    def test_discover(self):
        r = self.one(modern(self.port, "server/discover"))["result"]
        self.assertEqual(r["resultType"], "complete")
        self.assertEqual(r["supportedVersions"][0], V)
        self.assertIn("2025-11-25", r["supportedVersions"])
        self.assertEqual(r["_meta"]["io.modelcontextprotocol/serverInfo"]["name"], "csmcp")
        self.assertTrue(r["capabilities"]["resources"]["subscribe"])  # subscriptions/listen
        self.assertIsInstance(r["ttlMs"], int)
        self.assertIn(r["cacheScope"], ("public", "private"))

    def test_caching_hints_and_result_type(self):
        for me, params in (("tools/list", {}), ("prompts/list", {}), ("resources/list", {}),
                           ("resources/templates/list", {}),
                           ("resources/read", {"uri": "test://static-text"})):
            r = self.one(modern(self.port, me, params))["result"]
            self.assertEqual(r["resultType"], "complete", me)
            self.assertEqual(r["cacheScope"], "private", me)
            self.assertEqual(r["ttlMs"], 0 if me == "resources/read" else 60000, me)
            self.assertEqual(r["_meta"]["io.modelcontextprotocol/serverInfo"]["name"], "csmcp")
        r = self.one(modern(self.port, "tools/call", {"name": "test_simple_text",
                                                      "arguments": {}}))["result"]
        self.assertEqual(r["resultType"], "complete")
        self.assertNotIn("ttlMs", r)

    def test_tools_list_same_order_on_every_worker(self):
        names = None
        for i in range(8):  # 4 workers: fresh connections spread over them
            r = self.one(modern(self.port, "tools/list", id=i))["result"]
            got = [t["name"] for t in r["tools"]]
            if names is None:
                names = got
            self.assertEqual(got, names)

    def test_resource_not_found_is_invalid_params(self):
        err = self.assertError(modern(self.port, "resources/read", {"uri": "test://nope"}), 200,
                               -32602, "Resource not found")
        self.assertEqual(err["data"]["uri"], "test://nope")

    def test_progress_on_sse_and_no_logs_without_log_level(self):
        st, hd, msgs, raw = modern(self.port, "tools/call", {
            "name": "test_tool_with_progress", "arguments": {},
            "_meta": {"progressToken": "p1"}},
            meta={"progressToken": "p1"})
        self.assertEqual(st, 200, raw)
        self.assertTrue(hd["content-type"].startswith("text/event-stream"))
        self.assertNotIn(b"id: ", raw)  # modern streams are not resumable: no event ids
        self.assertNotIn(b"retry:", raw)
        prog = [m for m in msgs if m.get("method") == "notifications/progress"]
        self.assertGreaterEqual(len(prog), 3)
        self.assertEqual(msgs[-1]["result"]["resultType"], "complete")
        _, _, msgs, raw = modern(self.port, "tools/call", {"name": "test_logging_tool",
                                                           "arguments": {}})
        self.assertEqual([m for m in msgs if m.get("method") == "notifications/message"], [])
        _, _, msgs, raw = modern(self.port, "tools/call", {"name": "test_logging_tool",
                                                           "arguments": {}},
                                 meta={"io.modelcontextprotocol/logLevel": "info"})
        logs = [m for m in msgs if m.get("method") == "notifications/message"]
        self.assertEqual(len(logs), 3, raw)
        _, _, msgs, raw = modern(self.port, "tools/call", {"name": "test_logging_tool",
                                                           "arguments": {}},
                                 meta={"io.modelcontextprotocol/logLevel": "error"})
        self.assertEqual([m for m in msgs if m.get("method") == "notifications/message"], [])

    def test_closing_the_stream_cancels_the_call(self):
        def cancelled():
            out = su.psql(lib.database_url(), "SELECT count(*) FROM audit_log WHERE tool = "
                          "'test_tool_with_progress' AND outcome = 'cancelled'")
            return int(out.strip() or 0)
        before = cancelled()
        body = json.dumps({"jsonrpc": "2.0", "id": 77, "method": "tools/call", "params": {
            "name": "test_tool_with_progress", "arguments": {},
            "_meta": dict(META, progressToken="cancel-me")}}).encode()
        head = ("POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: application/json\r\n"
                "Accept: application/json, text/event-stream\r\nMCP-Protocol-Version: %s\r\n"
                "Mcp-Method: tools/call\r\nMcp-Name: test_tool_with_progress\r\n"
                "Content-Length: %d\r\n\r\n" % (self.port, V, len(body))).encode()
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            s.sendall(head + body)
            got = b""
            while b"notifications/progress" not in got:
                chunk = s.recv(4096)
                self.assertTrue(chunk, got)
                got += chunk
        # closed after the first progress event: the call is cancelled, audited as such
        lib.wait_until(lambda: cancelled() > before, 10, what="a cancelled audit row")

    def test_subscriptions_listen_delivers_alert_updates(self):
        """The ack first (only the alerts URIs accepted, tagged with the request id), then
        notifications/resources/updated for a subscribed account's alert, on any worker."""
        client = "cs_listen_%d" % int(time.time() * 1000)
        body = json.dumps({"jsonrpc": "2.0", "id": "sub-1", "method": "subscriptions/listen",
                           "params": {"_meta": META, "notifications": {
                               "toolsListChanged": True,
                               "resourceSubscriptions": ["csmcp://alerts/" + client,
                                                         "file:///not/ours"]}}}).encode()
        head = ("POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: application/json\r\n"
                "Accept: application/json, text/event-stream\r\nMCP-Protocol-Version: %s\r\n"
                "Mcp-Method: subscriptions/listen\r\nContent-Length: %d\r\n\r\n"
                % (self.port, V, len(body))).encode()

        def events(sock, want):
            buf = b""
            out = []
            deadline = time.time() + 5
            while len(out) < want and time.time() < deadline:
                chunk = sock.recv(65536)
                self.assertTrue(chunk, buf)
                buf += chunk
                while b"\n\n" in buf:
                    ev, buf = buf.split(b"\n\n", 1)
                    data = [l[5:].strip() for l in ev.split(b"\n") if l.startswith(b"data:")]
                    if data and data[0]:
                        out.append(json.loads(b"".join(data)))
            return out

        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            s.sendall(head + body)
            ack = events(s, 1)[0]
            self.assertEqual(ack["method"], "notifications/subscriptions/acknowledged")
            self.assertEqual(ack["params"]["notifications"],
                             {"resourceSubscriptions": ["csmcp://alerts/" + client]})
            self.assertEqual(ack["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"],
                             "sub-1")
            # an alert of another account is not sent; this account's is
            redis_command("PUBLISH", "csmcp:alerts", json.dumps(
                {"alert_id": 1, "monitor": "m", "client_id": client + "_other"}))
            redis_command("PUBLISH", "csmcp:alerts", json.dumps(
                {"alert_id": 2, "monitor": "m", "client_id": client}))
            ev = events(s, 1)[0]
        self.assertEqual(ev["method"], "notifications/resources/updated")
        self.assertEqual(ev["params"]["uri"], "csmcp://alerts/" + client)
        self.assertEqual(ev["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"],
                         "sub-1")
        self.assertError(modern(self.port, "subscriptions/listen", {}), 200, -32602,
                         "notifications")

    def test_server_to_client_requests_never_sent(self):
        # the legacy sampling fixture needs a server->client request: impossible on this wire
        _, _, msgs, raw = modern(self.port, "tools/call", {"name": "test_sampling",
                                                           "arguments": {"prompt": "hi"}},
                                 meta={"io.modelcontextprotocol/clientCapabilities":
                                       {"sampling": {}}})
        self.assertFalse(any("method" in m and "id" in m for m in msgs), raw)

    def test_invalid_arguments_are_tool_errors(self):
        r = self.one(modern(self.port, "tools/call", {"name": "test_simple_text",
                                                      "arguments": {"x": 1}}))["result"]
        self.assertTrue(r["isError"])
        self.assertEqual(r["resultType"], "complete")
        self.assertError(modern(self.port, "tools/call", {"name": "no_such_tool",
                                                          "arguments": {}}), 200, -32602,
                         "Unknown tool")

    def test_no_session_state_in_redis(self):
        def count():
            # integer reply ":N" of the number of session and event-store keys
            raw = redis_command("EVAL", "return #redis.call('KEYS', 'csmcp:s:*') + "
                                "#redis.call('KEYS', 'csmcp:ev:*')", "0")
            return int(raw[1:-2])
        before = count()
        for i in range(5):
            st, _, msgs, raw = modern(self.port, "tools/call", {"name": "test_tool_with_progress",
                                                                "arguments": {}},
                                      meta={"progressToken": i}, id=i)
            self.assertEqual((st, msgs[-1]["result"]["resultType"]), (200, "complete"), raw)
        self.assertEqual(count(), before)

    # ---- input required (MRTR) ----

    def call(self, name, id=1, caps=None, arguments=None, **params):
        meta = {"io.modelcontextprotocol/clientCapabilities":
                caps if caps is not None else {"elicitation": {}, "sampling": {}, "roots": {}}}
        return modern(self.port, "tools/call", dict(name=name, arguments=arguments or {},
                                                    **params), id=id, meta=meta)

    def test_input_required_round_trip_across_workers(self):
        r1 = self.one(self.call("test_input_required_result_request_state"))["result"]
        self.assertEqual(r1["resultType"], "input_required")
        self.assertEqual(r1["inputRequests"]["confirm"]["method"], "elicitation/create")
        state = r1["requestState"]
        for i in range(4):  # any worker verifies what another signed
            r2 = self.one(self.call("test_input_required_result_request_state", id=10 + i,
                                    inputResponses={"confirm": {"action": "accept",
                                                                "content": {"ok": True}}},
                                    requestState=state))["result"]
            self.assertEqual(r2["resultType"], "complete")
            self.assertIn("state-ok", r2["content"][0]["text"])

    def test_tampered_foreign_and_oversized_state(self):
        r1 = self.one(self.call("test_input_required_result_tampered_state"))["result"]
        st = r1["requestState"]
        ans = {"confirm": {"action": "accept", "content": {"ok": True}}}
        p64 = st.split(".")[1]
        forged = json.loads(base64.urlsafe_b64decode(p64 + "=" * (-len(p64) % 4)))
        forged["round"] = 1
        forged["exp"] += 3600
        f64 = base64.urlsafe_b64encode(json.dumps(forged).encode()).decode().rstrip("=")
        for bad, why in ((st + "-TAMPERED", "integrity"),
                         ("v1.%s.%s" % (f64, st.split(".")[2]), "integrity"),
                         ("garbage", "not one this server issued"),
                         ("v1." + "A" * 5000, "longer than 4096")):
            self.assertError(self.call("test_input_required_result_tampered_state", id=2,
                                       inputResponses=ans, requestState=bad), 200, -32602, why,
                             id=2)
        # a state issued for another tool is refused (the MAC binds the name)
        other = self.one(self.call("test_input_required_result_request_state"))["result"]
        self.assertError(self.call("test_input_required_result_tampered_state", id=3,
                                   inputResponses=ans, requestState=other["requestState"]),
                         200, -32602, "integrity", id=3)
        # inputResponses without the state it needs
        self.assertError(self.call("test_input_required_result_tampered_state", id=4,
                                   inputResponses=ans), 200, -32602, "requestState is required",
                         id=4)

    def test_state_carries_its_600_s_expiry(self):
        # the expiry itself cannot be forged (the MAC covers it): check what was sealed
        r1 = self.one(self.call("test_input_required_result_request_state"))["result"]
        p64 = r1["requestState"].split(".")[1]
        exp = json.loads(base64.urlsafe_b64decode(p64 + "=" * (-len(p64) % 4)))["exp"]
        self.assertAlmostEqual(exp - time.time(), 600, delta=5)

    def test_capabilities_respected_and_missing_capability(self):
        r = self.one(self.call("test_input_required_result_capabilities",
                               caps={"sampling": {}}))["result"]
        self.assertEqual([v["method"] for v in r["inputRequests"].values()],
                         ["sampling/createMessage"])
        err = self.assertError(self.call("test_missing_capability", caps={}), 400, -32021,
                               "sampling")
        self.assertEqual(err["data"], {"requiredCapabilities": {"sampling": {}}})

    def test_multi_round_states_differ(self):
        r1 = self.one(self.call("test_input_required_result_multi_round"))["result"]
        r2 = self.one(self.call("test_input_required_result_multi_round", id=2,
                                inputResponses={"step1": {"action": "accept",
                                                          "content": {"name": "Ada"}}},
                                requestState=r1["requestState"]))["result"]
        self.assertEqual(list(r2["inputRequests"]), ["step2"])
        self.assertNotEqual(r2["requestState"], r1["requestState"])
        r3 = self.one(self.call("test_input_required_result_multi_round", id=3,
                                inputResponses={"step2": {"action": "accept",
                                                          "content": {"color": "teal"}}},
                                requestState=r2["requestState"]))["result"]
        self.assertEqual(r3["content"][0]["text"], "Hello Ada, your favorite color is teal")

    def test_invalid_input_responses(self):
        self.assertError(self.call("test_input_required_result_elicitation",
                                   inputResponses=None), 200, -32602, "inputResponses")
        self.assertError(self.call("test_input_required_result_elicitation",
                                   inputResponses={"user_name": 12345}), 200, -32602,
                         "inputResponses.user_name")
        r = self.one(self.call("test_input_required_result_elicitation",
                               inputResponses={"wrong": {"action": "accept"}}))["result"]
        self.assertEqual(r["resultType"], "input_required")

    def test_registry_tools_ask_through_input_required(self):
        """tool_call_request of any registry tool (here the legacy sampling fixture) becomes an
        input_required round; the retry is bound to the same arguments."""
        caps = {"sampling": {}}
        r1 = self.one(self.call("test_sampling", caps=caps, arguments={"prompt": "capital?"}))
        r1 = r1["result"]
        self.assertEqual(r1["resultType"], "input_required")
        req = r1["inputRequests"]["input-0"]
        self.assertEqual(req["method"], "sampling/createMessage")
        self.assertEqual(req["params"]["messages"][0]["content"]["text"], "capital?")
        ans = {"input-0": {"role": "assistant", "model": "m",
                           "content": {"type": "text", "text": "Paris"}}}
        r2 = self.one(self.call("test_sampling", id=2, caps=caps,
                                arguments={"prompt": "capital?"}, inputResponses=ans,
                                requestState=r1["requestState"]))["result"]
        self.assertEqual(r2["content"][0]["text"], "LLM response: Paris")
        self.assertError(self.call("test_sampling", id=3, caps=caps,
                                   arguments={"prompt": "other"}, inputResponses=ans,
                                   requestState=r1["requestState"]), 200, -32602,
                         "other arguments", id=3)
        self.assertError(self.call("test_sampling", id=4, caps=caps,
                                   arguments={"prompt": "capital?"}, inputResponses=ans), 200,
                         -32602, "requestState (a string) is required", id=4)
        # without the capability the handler's own fallback runs (no request at all)
        r = self.one(self.call("test_sampling", id=5, caps={},
                               arguments={"prompt": "capital?"}))["result"]
        self.assertEqual(r["resultType"], "complete")
        self.assertTrue(r["isError"])

    def test_erase_confirmation_by_elicitation(self):
        """A product tool: erase_client_data asks for confirmation; declining erases nothing."""
        args = {"client_id": "cs_modern_none", "confirm": "no"}
        r1 = self.one(self.call("erase_client_data", caps={"elicitation": {}},
                                arguments=args))["result"]
        self.assertEqual(r1["inputRequests"]["input-0"]["method"], "elicitation/create")
        self.assertIn("cs_modern_none",
                      r1["inputRequests"]["input-0"]["params"]["message"])
        r2 = self.one(self.call("erase_client_data", id=2, caps={"elicitation": {}},
                                arguments=args,
                                inputResponses={"input-0": {"action": "decline"}},
                                requestState=r1["requestState"]))["result"]
        self.assertEqual(r2["resultType"], "complete")
        self.assertIn("declined", json.dumps(r2))

    def test_prompt_input_required(self):
        r = self.one(modern(self.port, "prompts/get", {"name": "test_input_required_result_prompt"}))
        self.assertEqual(r["result"]["resultType"], "input_required")
        r = self.one(modern(self.port, "prompts/get", {
            "name": "test_input_required_result_prompt",
            "inputResponses": {"user_context": {"action": "accept",
                                                "content": {"context": "renewals"}}}}))
        self.assertEqual(r["result"]["messages"][0]["content"]["text"],
                         "Prompt with context: renewals")

    def test_legacy_session_gets_a_clear_error_from_modern_fixtures(self):
        s = lib.McpSession(self.port)
        try:
            st, _, msgs = s.request_raw("tools/call",
                                        {"name": "test_input_required_result_elicitation",
                                         "arguments": {}})
        finally:
            s.close()
        self.assertEqual(st, 200)
        self.assertTrue(msgs[-1]["result"]["isError"])
        self.assertIn("modern wire", msgs[-1]["result"]["content"][0]["text"])


class ModernAuth(lib.TestCase):
    """Per-request auth, scopes, rate limit per principal and audit: as in the legacy era."""

    @classmethod
    def setUpClass(cls):
        cls.d = lib.Csmcpd(workers=2, fixtures=True, auth=True,
                           conf={"ratelimit": {"enabled": True, "key_per_minute": 6}})
        cls.d.start()
        cls.read = su.create_key(cls.d.conf_path, "read", "modern-read")
        cls.key_id = cls.read.split("_")[1]

    @classmethod
    def tearDownClass(cls):
        cls.d.stop()

    def test_auth_scope_rate_limit_and_audit(self):
        st, hd, msgs, raw = modern(self.d.port, "tools/list")
        self.assertEqual(st, 401, raw)
        self.assertIn("resource_metadata=", hd.get("www-authenticate", ""))
        # a write tool with a read key: 403 with the request id and a modern code
        st, hd, msgs, raw = modern(self.d.port, "tools/call",
                                   {"name": "erase_client_data",
                                    "arguments": {"client_id": "x", "confirm": "x"}},
                                   id=42, token=self.read)
        self.assertEqual(st, 403, raw)
        self.assertEqual((msgs[0]["id"], msgs[0]["error"]["code"]), (42, -31001))
        self.assertIn("insufficient_scope", hd.get("www-authenticate", ""))
        statuses = []
        for i in range(10):
            st, hd, msgs, raw = modern(self.d.port, "tools/call",
                                       {"name": "test_simple_text", "arguments": {}}, id=i,
                                       token=self.read)
            statuses.append(st)
            if st == 429:
                self.assertEqual((msgs[0]["id"], msgs[0]["error"]["code"]), (i, -31029), raw)
                self.assertIn("retry-after", hd)
        self.assertIn(429, statuses)
        self.assertEqual(statuses[0], 200)

        def rows():
            out = su.psql(lib.database_url(), "SELECT outcome FROM audit_log WHERE principal = "
                          "'key:%s' AND tool IN ('test_simple_text', 'erase_client_data') "
                          "ORDER BY id" % self.key_id)
            got = out.split()
            return got if "denied" in got and "ok" in got and "limited" in got else None
        got = lib.wait_until(rows, 10, what="audit rows of the modern calls")
        self.assertEqual(got.count("denied"), 1, got)  # the refused write call, nothing else
