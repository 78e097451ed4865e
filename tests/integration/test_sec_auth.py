"""Authentication and authorisation of /mcp: API keys (create, scopes, revoke, expiry), JWT
access tokens (RS256 from a JWKS file, iss/aud/exp/nbf, scopes), 401/403 with
WWW-Authenticate, and tokens never reaching the logs."""
import json
import os
import re
import time

import lib
import sec_util as su

ACCEPT = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": lib.PROTOCOL, "capabilities": {},
                   "clientInfo": {"name": "sec", "version": "1"}}}


def post(d, token=None, body=INIT, scheme="Bearer"):
    h = dict(ACCEPT)
    if token is not None:
        h["Authorization"] = "%s %s" % (scheme, token)
    return lib.http_request(d.port, "POST", "/mcp", body=body, headers=h)


class ApiKeys(lib.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = lib.Csmcpd(workers=2, auth=True).start()
        cls.read = su.create_key(cls.d.conf_path, "read", "sec-read")
        cls.admin = su.create_key(cls.d.conf_path, "read,write,admin", "sec-admin")

    @classmethod
    def tearDownClass(cls):
        cls.d.stop()

    def assert_401(self, resp, error=None):
        st, h, body = resp
        self.assertEqual(st, 401, body)
        www = h.get("www-authenticate", "")
        self.assertTrue(www.startswith("Bearer "), www)
        self.assertIn('resource_metadata="http://127.0.0.1:%d/.well-known/oauth-protected-'
                      'resource/mcp"' % self.d.port, www)
        if error:
            self.assertIn('error="%s"' % error, www)
        else:
            self.assertNotIn("error=", www)
        return www

    def test_missing_token_is_401_with_metadata_pointer(self):
        self.assert_401(post(self.d))

    def test_other_scheme_is_refused(self):
        self.assert_401(post(self.d, "dXNlcjpwYXNz", scheme="Basic"), "invalid_request")

    def test_bad_keys_are_401_invalid_token(self):
        kid = self.read.split("_")[1]
        for bad in ("csk_short", "csk_%s_%s" % (kid, "A" * 43),       # right id, wrong secret
                    "csk_0123456789ab_%s" % ("B" * 43),               # unknown id
                    self.read[:-1] + ("A" if self.read[-1] != "A" else "B"),
                    "not-a-jwt.at.all", "x" * 5000):
            self.assert_401(post(self.d, bad),
                            "invalid_token" if len(bad) < 5000 else "invalid_request")

    def test_valid_key_works(self):
        s = lib.McpSession(self.d.port, token=self.read)
        try:
            tools = s.request("tools/list")["tools"]
            self.assertTrue(any(t["name"] == "get_client_overview" for t in tools))
            # issue 24: a read key is not shown the admin-only tools
            self.assertFalse(any(t["name"] == "export_client_data" for t in tools))
        finally:
            s.close()

    def test_scope_enforced_with_403(self):
        s = lib.McpSession(self.d.port, token=self.read)
        try:
            st, h, msgs = s.request_raw("tools/call", {"name": "erase_client_data",
                                                       "arguments": {"client_id": "cs_x"}})
            self.assertEqual(st, 403)
            www = h.get("www-authenticate", "")
            self.assertIn('error="insufficient_scope"', www)
            self.assertIn('scope="admin"', www)
        finally:
            s.close()
        s = lib.McpSession(self.d.port, token=self.admin)
        try:
            st, _, msgs = s.request_raw("tools/call", {"name": "erase_client_data",
                                                      "arguments": {"client_id": "cs_none_x"}})
            self.assertEqual(st, 200)  # allowed through; the tool itself asks for confirmation
            self.assertTrue(msgs[-1]["result"]["isError"])
            self.assertIn("confirm", msgs[-1]["result"]["content"][0]["text"])
        finally:
            s.close()

    def test_scopes_are_hierarchical(self):
        # an admin-only key may still read and write: admin > write > read
        tok = su.create_key(self.d.conf_path, "admin", "sec-admin-only")
        s = lib.McpSession(self.d.port, token=tok)
        try:
            self.assertTrue(s.request("tools/list")["tools"])
            st, _, _ = s.request_raw("tools/call", {"name": "export_client_data",
                                                   "arguments": {"client_id": "cs_none"}})
            self.assertEqual(st, 200)
        finally:
            s.close()
        tok = su.create_key(self.d.conf_path, "write", "sec-write-only")
        s = lib.McpSession(self.d.port, token=tok)
        try:
            st, _, _ = s.request_raw("tools/call", {"name": "export_client_data",
                                                   "arguments": {"client_id": "cs_none"}})
            self.assertEqual(st, 403)
        finally:
            s.close()

    def test_session_bound_to_its_principal(self):
        # MCP security best practice: a session id is bound to the identity that created it,
        # so a leaked Mcp-Session-Id is useless with another principal's token
        other = su.create_key(self.d.conf_path, "read", "sec-other")
        s = lib.McpSession(self.d.port, token=self.read)
        try:
            for _ in range(8):  # the session is now in every worker's session cache
                self.assertEqual(s.request_raw("tools/list")[0], 200)
            s.token = other
            for _ in range(8):
                st, _, _ = s.request_raw("tools/list")
                self.assertIn(st, (403, 404))
        finally:
            s.token = self.read
            s.close()

    def test_revoked_key_stops_working_on_every_worker(self):
        tok = su.create_key(self.d.conf_path, "read", "sec-revoke")
        for _ in range(4):  # warm the caches of both workers
            self.assertEqual(post(self.d, tok)[0], 200)
        r = self.d.ctl_db("key", "revoke", tok.split("_")[1])
        self.assertEqual(r.returncode, 0, r.stderr)
        t0 = time.monotonic()

        def refused():
            return all(post(self.d, tok)[0] == 401 for _ in range(6))
        lib.wait_until(refused, 15, interval=0.5, what="revoked key refused")
        self.assertLess(time.monotonic() - t0, 13)

    def test_expired_key_refused(self):
        tok = su.create_key(self.d.conf_path, "read", "sec-expire")
        su.psql(lib.database_url(), "UPDATE api_keys SET expires_at = now() - interval '1 second'"
                " WHERE key_id = '%s'" % tok.split("_")[1])
        www = self.assert_401(post(self.d, tok), "invalid_token")
        self.assertIn("expired", www)

    def test_tokens_never_logged(self):
        post(self.d, self.read)
        post(self.d, "csk_0123456789ab_%s" % ("Z" * 43))
        time.sleep(0.3)
        with open(self.d.log_path, "rb") as f:
            log = f.read()
        self.assertNotIn(self.read.split("_", 2)[2].encode(), log)
        self.assertNotIn(b"Z" * 43, log)


class Jwt(lib.TestCase):
    ISS = "https://idp.example.test"
    AUD = "https://mcp.example.test/mcp"

    @classmethod
    def setUpClass(cls):
        cls.pki = su.Pki()
        cls.key, jwk = cls.pki.rsa_jwk("k1")
        cls.other, _ = cls.pki.rsa_jwk("k2")
        jwks = cls.pki.path("jwks.json")
        with open(jwks, "w") as f:
            json.dump({"keys": [jwk]}, f)
        cls.d = lib.Csmcpd(workers=1, auth=True, conf={"auth": {
            "jwks_file": jwks, "jwt_issuer": cls.ISS, "jwt_audience": cls.AUD,
            "resource_url": cls.AUD}}).start()

    @classmethod
    def tearDownClass(cls):
        cls.d.stop()
        cls.pki.cleanup()

    def token(self, key=None, **over):
        now = su.now()
        claims = {"iss": self.ISS, "aud": self.AUD, "sub": "alice@example.test",
                  "exp": now + 300, "nbf": now - 10, "scope": "read write"}
        claims.update(over)
        claims = {k: v for k, v in claims.items() if v is not None}
        return self.pki.jwt(key or self.key, claims)

    def test_valid_token(self):
        st, _, body = post(self.d, self.token())
        self.assertEqual(st, 200, body)

    def test_metadata_names_issuer_and_resource(self):
        st, _, body = self.d.get("/.well-known/oauth-protected-resource/mcp")
        doc = json.loads(body)
        self.assertEqual(doc["resource"], self.AUD)
        self.assertEqual(doc["authorization_servers"], [self.ISS])

    def test_rejections(self):
        now = su.now()
        cases = {
            "expired": self.token(exp=now - 120),
            "not yet valid": self.token(nbf=now + 600),
            "wrong issuer": self.token(iss="https://evil.example"),
            "wrong audience": self.token(aud="https://other.example/mcp"),
            "no exp": self.token(exp=None),
            "unknown key": self.token(key=self.other),
        }
        for why, tok in cases.items():
            st, h, _ = post(self.d, tok)
            self.assertEqual(st, 401, why)
            self.assertIn('error="invalid_token"', h.get("www-authenticate", ""), why)
        # tampered payload
        h, c, s = self.token().split(".")
        claims = json.loads(su.base64.urlsafe_b64decode(c + "=" * (-len(c) % 4)))
        claims["scope"] = "read write admin"
        forged = "%s.%s.%s" % (h, su.b64u(json.dumps(claims).encode()), s)
        self.assertEqual(post(self.d, forged)[0], 401)
        # alg none
        none = "%s.%s." % (su.b64u(b'{"alg":"none"}'), c)
        self.assertEqual(post(self.d, none)[0], 401)

    def test_scopes_from_token(self):
        s = lib.McpSession(self.d.port, token=self.token(scope="read"))
        try:
            st, h, _ = s.request_raw("tools/call", {"name": "export_client_data",
                                                   "arguments": {"client_id": "cs_x"}})
            self.assertEqual(st, 403)
            self.assertIn('scope="admin"', h.get("www-authenticate", ""))
        finally:
            s.close()


class AuthDisabled(lib.TestCase):
    def test_anonymous_allowed_when_not_required(self):
        with lib.Csmcpd(workers=1, auth=False) as d:
            self.assertEqual(post(d)[0], 200)
