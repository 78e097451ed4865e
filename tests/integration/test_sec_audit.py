"""Audit trail written by the server: one hash-chained row per tool call with the caller's
principal, the tool, the arguments with secrets scrubbed, the outcome and the latency; the
chain verifies; GDPR tools work end to end and erasure leaves a record without personal data."""
import json
import secrets
import time

import lib
import sec_util as su


class ServerAudit(lib.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = lib.Csmcpd(workers=2, auth=True, fixtures=True).start()
        cls.token = su.create_key(cls.d.conf_path, "read,write,admin", "audit")
        cls.key_id = cls.token.split("_")[1]

    @classmethod
    def tearDownClass(cls):
        cls.d.stop()

    def rows(self, where):
        out = su.psql(lib.database_url(), "SELECT row_to_json(a)::text FROM audit_log a WHERE %s "
                      "ORDER BY id" % where)
        return [json.loads(l) for l in out.splitlines() if l.strip()]

    def test_tool_call_recorded_with_scrubbed_arguments(self):
        marker = "cs_audit_%s" % secrets.token_hex(4)
        s = lib.McpSession(self.d.port, token=self.token)
        try:
            # export_client_data's schema forbids extra properties, so the secret goes in a
            # string that is secret-shaped instead
            s.call_tool("export_client_data", {"client_id": marker})
            s.call_tool("test_simple_text", {})
        finally:
            s.close()

        def recorded():
            return self.rows("principal = 'key:%s' AND args->>'client_id' = '%s'"
                             % (self.key_id, marker))
        rows = lib.wait_until(recorded, 10, what="audit row")
        r = rows[0]
        self.assertEqual(r["method"], "tools/call")
        self.assertEqual(r["tool"], "export_client_data")
        self.assertEqual(r["outcome"], "error")  # the account does not exist
        self.assertGreaterEqual(r["latency_ms"], 0)
        self.assertRegex(r["hash"], "^[0-9a-f]{64}$")
        ok = lib.wait_until(lambda: self.rows("principal = 'key:%s' AND tool = 'test_simple_text'"
                                              % self.key_id), 10, what="second row")
        self.assertEqual(ok[0]["outcome"], "ok")
        v = self.d.ctl_db("audit", "verify")
        self.assertEqual(v.returncode, 0, v.stdout + v.stderr)

    def test_secret_shaped_arguments_are_scrubbed(self):
        jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.%s" % secrets.token_hex(8)
        s = lib.McpSession(self.d.port, token=self.token)
        try:
            s.request_raw("tools/call", {"name": "erase_client_data", "arguments": {
                "client_id": "cs_scrub_x", "confirm": "Bearer " + jwt}})
        finally:
            s.close()
        rows = lib.wait_until(lambda: self.rows("principal = 'key:%s' AND tool = "
                                                "'erase_client_data' AND args->>'client_id' = "
                                                "'cs_scrub_x'" % self.key_id), 10, what="row")
        dump = json.dumps(rows)
        self.assertNotIn(jwt.split(".")[2], dump)
        self.assertIn("[REDACTED]", dump)


class Gdpr(lib.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = lib.Csmcpd(workers=1, auth=True).start()
        cls.admin = su.create_key(cls.d.conf_path, "read,write,admin", "gdpr")
        cls.read = su.create_key(cls.d.conf_path, "read", "gdpr-read")

    @classmethod
    def tearDownClass(cls):
        cls.d.stop()

    def make_account(self):
        cid = "cs_gdpr_%s" % secrets.token_hex(4)
        su.psql(lib.database_url(), """
            INSERT INTO accounts (client_id, client_name, company_name, primary_contact_email)
                VALUES ('%(c)s', 'Gdpr Test', 'Gdpr Test Ltd', 'dpo@gdpr.example');
            INSERT INTO contacts (client_id, name, email) VALUES ('%(c)s', 'Ann Subject',
                'ann@gdpr.example');""" % {"c": cid})
        return cid

    def count(self, cid):
        return int(su.psql(lib.database_url(), "SELECT (SELECT count(*) FROM accounts WHERE "
                           "client_id='%s') + (SELECT count(*) FROM contacts WHERE client_id='%s')"
                           % (cid, cid)).strip())

    def test_export_contains_everything_about_the_account(self):
        cid = self.make_account()
        s = lib.McpSession(self.d.port, token=self.admin)
        try:
            out = s.call_ok("export_client_data", {"client_id": cid})
        finally:
            s.close()
        self.assertEqual(out["client_id"], cid)
        self.assertEqual(out["tables"]["accounts"][0]["company_name"], "Gdpr Test Ltd")
        self.assertEqual(out["tables"]["contacts"][0]["email"], "ann@gdpr.example")
        self.assertGreaterEqual(out["row_count"], 2)

    def test_erase_needs_admin_and_confirmation(self):
        cid = self.make_account()
        s = lib.McpSession(self.d.port, token=self.read)
        try:
            st, _, _ = s.request_raw("tools/call", {"name": "erase_client_data",
                                                   "arguments": {"client_id": cid}})
            self.assertEqual(st, 403)
        finally:
            s.close()
        s = lib.McpSession(self.d.port, token=self.admin)  # no elicitation capability
        try:
            r = s.call_tool("erase_client_data", {"client_id": cid})
            self.assertTrue(r["isError"])
            self.assertEqual(self.count(cid), 2)
            r = s.call_tool("erase_client_data", {"client_id": cid, "confirm": "wrong"})
            self.assertTrue(r["isError"])
            self.assertEqual(self.count(cid), 2)
            out = s.call_ok("erase_client_data", {"client_id": cid, "confirm": cid})
            self.assertTrue(out["erased"])
            self.assertGreaterEqual(out["rows_deleted"], 2)
        finally:
            s.close()
        self.assertEqual(self.count(cid), 0)
        rows = su.psql(lib.database_url(), "SELECT row_to_json(a)::text FROM audit_log a WHERE "
                       "method = 'gdpr.erase' AND args->>'client_id' = '%s'" % cid)
        self.assertTrue(rows.strip(), "no gdpr.erase audit row")
        self.assertNotIn("ann@gdpr.example", rows)
        self.assertNotIn("Ann Subject", rows)

    def test_erase_confirmed_by_elicitation(self):
        cid = self.make_account()
        self.assertEqual(self.elicit_erase(cid, {"action": "decline"})["erased"], False)
        self.assertEqual(self.count(cid), 2)
        out = self.elicit_erase(cid, {"action": "accept", "content": {"confirm": True}})
        self.assertTrue(out["erased"])
        self.assertEqual(self.count(cid), 0)

    def elicit_erase(self, cid, answer):
        """tools/call with a client that declares elicitation: reads the SSE stream, answers the
        elicitation/create request with a second POST, returns the structuredContent."""
        import http.client
        s = lib.McpSession(self.d.port, token=self.admin, capabilities={"elicitation": {}})
        try:
            conn = http.client.HTTPConnection("127.0.0.1", self.d.port, timeout=20)
            conn.request("POST", "/mcp", body=json.dumps({
                "jsonrpc": "2.0", "id": 77, "method": "tools/call",
                "params": {"name": "erase_client_data", "arguments": {"client_id": cid}}}),
                headers=s.headers())
            r = conn.getresponse()
            self.assertEqual(r.status, 200)
            self.assertTrue(r.getheader("content-type").startswith("text/event-stream"))
            deadline = time.monotonic() + 20
            data = b""
            while time.monotonic() < deadline:
                line = r.readline()
                if not line:
                    break
                if not line.startswith(b"data:") or not line[5:].strip():
                    continue
                msg = json.loads(line[5:])
                if msg.get("method") == "elicitation/create":
                    self.assertIn(cid, msg["params"]["message"])
                    st, _, _ = s.post({"jsonrpc": "2.0", "id": msg["id"], "result": answer})
                    self.assertEqual(st, 202)
                elif msg.get("id") == 77:
                    self.assertNotIn("error", msg, msg)
                    return msg["result"]["structuredContent"]
            self.fail("no tool result on the stream")
        finally:
            s.close()
