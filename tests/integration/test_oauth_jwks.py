"""auth.issuer discovery and JWKS refresh against a scripted HTTPS authorization server
(issue 22): every answer is chosen by the test, so the rules of worker/oidc.c are checked one
by one (test_oauth_e2e runs the same code against a real OpenID provider).

- an issuer with a path: RFC 8414 (/.well-known/oauth-authorization-server/<path>) first, then
  OpenID discovery (<issuer>/.well-known/openid-configuration);
- the JWKS is refetched by its Expires header; Cache-Control: max-age above the maximum is
  capped by auth.jwks_refresh_max;
- a failing JWKS keeps the cached keys and repeats discovery; discovery that names another
  issuer or an http jwks_uri is refused (RFC 8414 3.3) and the cached keys stay.
"""
import email.utils
import http.server
import json
import ssl
import subprocess
import threading
import time

import lib
import sec_util as su
from test_oauth_e2e import make_ca, metric


class Idp(http.server.ThreadingHTTPServer):
    daemon_threads = True


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def do_GET(self):
        srv = self.server
        with srv.lock:
            srv.hits.append((time.monotonic(), self.path))
            route = srv.routes.get(self.path)
        if route is None:
            status, headers, body = 404, {}, b'{"error":"not found"}'
        else:
            status, headers, body = route()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)


class JwksRefresh(lib.TestCase):
    DOWN = "https://127.0.0.1:9/unreachable"

    @classmethod
    def setUpClass(cls):
        cls.pki = su.Pki()
        ca, crt, key = make_ca(cls.pki)
        cls.srv = Idp(("127.0.0.1", 0), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(crt, key)
        cls.srv.socket = ctx.wrap_socket(cls.srv.socket, server_side=True)
        cls.srv.lock = threading.Lock()
        cls.srv.hits = []
        cls.port = cls.srv.server_address[1]
        cls.base = "https://127.0.0.1:%d" % cls.port
        cls.issuer = cls.base + "/realms/cs"
        cls.k1, jwk1 = cls.pki.rsa_jwk("k1")
        cls.k2, cls.jwk2 = cls.pki.rsa_jwk("k2")
        cls.jwks = {"keys": [jwk1]}
        cls.jwks_headers = staticmethod(lambda: {})
        cls.jwks_status = 200
        cls.meta = {"issuer": cls.issuer, "jwks_uri": cls.base + "/realms/cs/certs"}
        cls.srv.routes = {
            # RFC 8414 location: not served, so discovery falls back to OpenID's
            "/realms/cs/.well-known/openid-configuration":
                lambda: (200, {}, json.dumps(cls.meta).encode()),
            "/realms/cs/certs":
                lambda: (cls.jwks_status, cls.jwks_headers(), json.dumps(cls.jwks).encode()),
        }
        threading.Thread(target=cls.srv.serve_forever, daemon=True).start()
        cls.d = lib.Csmcpd(workers=2, fixtures=True, auth=True, conf={"auth": {
            # a second trusted issuer that is down: it must not disturb the first
            "issuer": [cls.issuer, cls.DOWN], "ca_file": ca, "jwks_refresh_min": 1,
            "jwks_refresh_max": 4, "jwks_miss_interval": 1, "fetch_timeout_ms": 2000}})
        cls.resource = "http://127.0.0.1:%d/mcp" % cls.d.port
        cls.d.rewrite_conf({"auth": {"resource_url": cls.resource}})
        cls.d.start()

    @classmethod
    def tearDownClass(cls):
        cls.d.stop()
        lib.assert_no_crash(cls.d)
        cls.srv.shutdown()
        cls.pki.cleanup()

    def tok(self, key, kid, sub="svc"):
        now = su.now()
        return self.pki.jwt(key, {"iss": self.issuer, "aud": self.resource, "sub": sub,
                                  "exp": now + 300, "iat": now, "scope": "read"}, kid=kid)

    def status(self, tok):
        st, _, _, _ = lib.mcp_post(self.d.port, {
            "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": lib.PROTOCOL, "capabilities": {},
                "clientInfo": {"name": "oauth-jwks", "version": "1"}}},
            headers={"Authorization": "Bearer " + tok})
        return st

    @property
    def disc_err(self):
        return 'issuer="%s",step="discovery",result="error"' % self.issuer

    def hits(self, path, since=0.0):
        with self.srv.lock:
            return [t for t, p in self.srv.hits if p == path and t >= since]

    def test_1_discovery_order_and_keys(self):
        lib.wait_for(lambda: len(self.hits("/realms/cs/certs")) >= 2, 15,
                     what="both workers fetched the JWKS")
        # RFC 8414 path insertion first, then OpenID discovery, per worker
        self.assertEqual(len(self.hits("/.well-known/oauth-authorization-server/realms/cs")), 2)
        self.assertGreaterEqual(len(self.hits("/realms/cs/.well-known/openid-configuration")), 2)
        self.assertEqual(self.status(self.tok(self.k1, "k1")), 200)
        # a key the issuer does not publish: 401 after one kid-miss refresh
        self.assertEqual(self.status(self.tok(self.k2, "k2")), 401)
        # both issuers are listed for clients; the one that is down has no keys: its tokens are
        # refused (fail closed), the other's keep working
        st, _, body = self.d.get("/.well-known/oauth-protected-resource/mcp")
        self.assertEqual(json.loads(body)["authorization_servers"], [self.issuer, self.DOWN])
        now = su.now()
        t = self.pki.jwt(self.k1, {"iss": self.DOWN, "aud": self.resource, "sub": "x",
                                   "exp": now + 300, "scope": "read"}, kid="k1")
        self.assertEqual(self.status(t), 401)

    def test_2_refresh_by_expires_and_capped_max_age(self):
        # Expires 2 s after Date, no Cache-Control: each worker refetches every ~2 s
        # (the server sends its own Date)
        type(self).jwks_headers = staticmethod(lambda: {
            "Expires": email.utils.formatdate(time.time() + 2, usegmt=True)})
        time.sleep(4.5)  # let every worker pick up the new headers (max 4 s)
        t0 = time.monotonic()
        time.sleep(6)
        n = len(self.hits("/realms/cs/certs", t0))
        # 2 workers x 6 s / 2 s = 6 (Expires and Date have 1 s resolution: 1-2 s each time)
        print("    Expires = now + 2 s: %d JWKS fetches by 2 workers in 6 s" % n)
        self.assertTrue(4 <= n <= 12, "JWKS fetched %d times in 6 s with Expires = Date + 2" % n)
        # max-age far above auth.jwks_refresh_max (4 s): capped at 4 s
        type(self).jwks_headers = staticmethod(lambda: {"Cache-Control": "public, max-age=86400"})
        time.sleep(4.5)
        t0 = time.monotonic()
        time.sleep(8.5)
        n = len(self.hits("/realms/cs/certs", t0))
        print("    max-age=86400 capped at jwks_refresh_max = 4 s: %d fetches in 8.5 s" % n)
        self.assertTrue(3 <= n <= 6, "JWKS fetched %d times in 8.5 s with max-age capped to 4" % n)

    def test_3_failures_keep_keys_and_refuse_bad_metadata(self):
        good = self.tok(self.k1, "k1", sub="a")
        err0 = metric(self.d, "csmcp_auth_jwks_fetch_total", self.disc_err)
        # the JWKS fails (500), and rediscovery names another issuer
        type(self).jwks_status = 500
        type(self).meta = {"issuer": "https://evil.example.test", "jwks_uri": self.base + "/x"}
        lib.wait_for(lambda: metric(self.d, "csmcp_auth_jwks_fetch_total",
                                    self.disc_err) >= err0 + 2, 20,
                     what="discovery refused on both workers")
        # the cached key still works (fresh token: no auth-cache entry)
        self.assertEqual(self.status(self.tok(self.k1, "k1", sub="b")), 200)
        # an http jwks_uri is refused the same way
        type(self).meta = {"issuer": self.issuer, "jwks_uri": "http://127.0.0.1:1/certs"}
        err1 = metric(self.d, "csmcp_auth_jwks_fetch_total", self.disc_err)
        lib.wait_for(lambda: metric(self.d, "csmcp_auth_jwks_fetch_total",
                                    self.disc_err) >= err1 + 2, 20,
                     what="http jwks_uri refused")
        self.assertEqual(self.status(good), 200)
        with open(self.d.log_path, "rb") as f:
            log = f.read().decode(errors="replace")
        self.assertIn("metadata names another issuer", log)
        self.assertIn("metadata has no https jwks_uri", log)
        self.assertIn("cached keys kept", log)
        # recovery: the right metadata and JWKS, now with the second key as well
        type(self).meta = {"issuer": self.issuer, "jwks_uri": self.base + "/realms/cs/certs"}
        type(self).jwks_status = 200
        type(self).jwks = {"keys": self.jwks["keys"] + [self.jwk2]}
        lib.wait_for(lambda: self.status(self.tok(self.k2, "k2", sub="c")) == 200, 20,
                     what="second key accepted after recovery")


class ConfigChecks(lib.TestCase):
    """csmcpd -t (key table rules) and csmcpd's start-up (secrets, files; reloads run the same
    check) refuse an OAuth configuration the workers could not run, naming the key."""

    def start(self, auth, env=None):
        d = lib.Csmcpd(workers=1, auth=True, conf={"auth": auth}, env=env)
        t = subprocess.run([lib.CSMCPD, "-t", "-c", d.conf_path], env=d.env,
                           capture_output=True, text=True, timeout=30)
        if t.returncode != 0:
            return t.returncode, t.stdout + t.stderr, d
        p = subprocess.run([lib.CSMCPD, "-c", d.conf_path], env=d.env, capture_output=True,
                           text=True, timeout=30)
        return p.returncode, p.stdout + p.stderr, d

    def test_refusals(self):
        res = {"resource_url": "https://mcp.example.test/mcp"}
        cases = [
            (dict(res, issuer=["http://idp.example.test"]), "not an https URL"),
            (dict(res, issuer=["https://idp.example.test?x=1"]), "not an https URL"),
            ({"issuer": ["https://idp.example.test"]}, "needs auth.resource_url"),
            (dict(res, issuer=["https://idp.example.test"], jwks_refresh_min=100,
                  jwks_refresh_max=50), "greater than auth.jwks_refresh_max"),
            (dict(res, introspection_endpoint="http://idp.example.test/introspect"),
             "must be an https URL"),
            (dict(res, issuer=["https://idp.example.test"], introspection_client_id="rs"),
             "client secret is not configured"),
            (dict(res, issuer=["https://idp.example.test"], ca_file="/nonexistent/ca.pem"),
             "auth.ca_file /nonexistent/ca.pem"),
        ]
        for auth, why in cases:
            rc, out, _ = self.start(auth)
            self.assertNotEqual(rc, 0, (auth, out))
            self.assertIn(why, out, auth)

    def test_secret_from_environment_never_logged(self):
        d = lib.Csmcpd(workers=1, auth=True, conf={"auth": {
            "resource_url": "https://mcp.example.test/mcp", "issuer": ["https://127.0.0.1:9"],
            "introspection_client_id": "rs"}},
            env={"CSMCP_INTROSPECTION_SECRET": "s3cr3t-introspection-value"})
        with d:
            lib.wait_for(lambda: "token introspection on" in d.log_tail(200), 10,
                         what="worker start-up line")
        log = d.log_tail(400)
        self.assertIn("secret from environment CSMCP_INTROSPECTION_SECRET", log)
        self.assertNotIn("s3cr3t", log)

if __name__ == "__main__":
    import unittest
    unittest.main()
