"""TLS on server.listen and the RFC 9728 protected-resource metadata endpoints."""
import http.client
import json
import os
import re
import socket
import ssl

import lib
import sec_util as su


class Metadata(lib.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = lib.Csmcpd(workers=1, auth=True).start()

    @classmethod
    def tearDownClass(cls):
        cls.d.stop()

    def test_both_paths_serve_prm(self):
        for path in ("/.well-known/oauth-protected-resource",
                     "/.well-known/oauth-protected-resource/mcp"):
            st, h, body = self.d.get(path)
            self.assertEqual(st, 200, path)
            self.assertTrue(h["content-type"].startswith("application/json"))
            doc = json.loads(body)
            self.assertEqual(doc["resource"], "http://127.0.0.1:%d/mcp" % self.d.port)
            self.assertIn("authorization_servers", doc)
            self.assertEqual(doc["bearer_methods_supported"], ["header"])
            self.assertEqual(sorted(doc["scopes_supported"]), ["admin", "read", "write"])

    def test_hostile_host_is_not_reflected(self):
        st, _, body = self.d.get("/.well-known/oauth-protected-resource",
                                 headers={"Host": 'evil.example"/><script>'})
        self.assertIn(st, (200, 400, 403, 421))
        self.assertNotIn(b"<script>", body)
        self.assertNotIn(b'evil.example"', body)
        if st == 200:
            json.loads(body)

    def test_post_refused(self):
        st, h, _ = lib.http_request(self.d.port, "POST", "/.well-known/oauth-protected-resource",
                                    body="{}", headers={"Content-Type": "application/json"})
        self.assertEqual(st, 405)


class Tls(lib.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pki = su.Pki()
        cls.crt, cls.key = cls.pki.cert()
        cls.d = lib.Csmcpd(workers=1, conf={"tls": {"enabled": True, "cert_file": cls.crt,
                                                    "key_file": cls.key}}).start()

    @classmethod
    def tearDownClass(cls):
        cls.d.stop()
        cls.pki.cleanup()

    def ctx(self, maxv=None, minv=None, ciphers=None):
        c = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        c.load_verify_locations(self.crt)
        c.check_hostname = False
        # let the client offer what we want the server to refuse
        c.set_ciphers(ciphers or "ALL:@SECLEVEL=0")
        if minv:
            c.minimum_version = minv
        if maxv:
            c.maximum_version = maxv
        return c

    def handshake(self, c):
        with socket.create_connection(("127.0.0.1", self.d.port), timeout=5) as s:
            with c.wrap_socket(s) as t:
                return t.version(), t.cipher()[0]

    def test_https_request_works(self):
        conn = http.client.HTTPSConnection("127.0.0.1", self.d.port, timeout=10, context=self.ctx())
        conn.request("GET", "/health")
        r = conn.getresponse()
        self.assertEqual(r.status, 200)
        r.read()
        conn.close()

    def test_tls12_and_13_accepted_with_aead_suites(self):
        v, cipher = self.handshake(self.ctx(maxv=ssl.TLSVersion.TLSv1_2))
        self.assertEqual(v, "TLSv1.2")
        self.assertTrue("GCM" in cipher or "CHACHA20" in cipher, cipher)
        self.assertTrue(cipher.startswith("ECDHE"), cipher)
        v, _ = self.handshake(self.ctx(minv=ssl.TLSVersion.TLSv1_3))
        self.assertEqual(v, "TLSv1.3")

    def test_old_protocols_refused(self):
        for v in (ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1):
            try:
                c = self.ctx(maxv=v, minv=v)
            except (ValueError, ssl.SSLError):
                continue  # this OpenSSL cannot even offer it
            with self.assertRaises((ssl.SSLError, ConnectionError, OSError)):
                self.handshake(c)

    def test_weak_cipher_refused(self):
        c = self.ctx(maxv=ssl.TLSVersion.TLSv1_2, ciphers="AES128-SHA:@SECLEVEL=0")
        with self.assertRaises((ssl.SSLError, ConnectionError, OSError)):
            self.handshake(c)

    def test_plaintext_http_gets_no_answer(self):
        with socket.create_connection(("127.0.0.1", self.d.port), timeout=5) as s:
            s.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            try:
                data = s.recv(4096)
            except (ConnectionError, socket.timeout):
                data = b""
            self.assertFalse(data.startswith(b"HTTP/1.1 200"))

    def test_hsts_header_with_tls(self):
        conn = http.client.HTTPSConnection("127.0.0.1", self.d.port, timeout=10, context=self.ctx())
        conn.request("POST", "/mcp", body="{}", headers={"Content-Type": "application/json"})
        r = conn.getresponse()
        r.read()
        conn.close()
        self.assertIn("max-age=", r.getheader("Strict-Transport-Security") or "")

    def test_mismatched_key_fails_start(self):
        crt2, key2 = self.pki.cert("other")
        d = lib.Csmcpd(workers=1, conf={"tls": {"enabled": True, "cert_file": self.crt,
                                                "key_file": key2}})
        d.start(wait_ready=False)
        try:
            # csmcpd itself refuses to start (secret_check_config) and names the key file;
            # a worker started with the pair would report "tls: ... mismatch".
            lib.wait_until(lambda: re.search(rb"tls(\.key_file [^:]*)?: .*(mismatch|does not match)",
                                             open(d.log_path, "rb").read()), 15,
                           what="key mismatch reported")
            st = None
            try:
                st, _, _ = d.admin("/ready")
            except OSError:
                pass
            self.assertNotEqual(st, 200)
        finally:
            d.stop()


class TlsReload(lib.TestCase):
    def test_certificate_rotated_by_reload(self):
        pki = su.Pki()
        crt, key = pki.cert("a", cn="first.test")
        d = lib.Csmcpd(workers=1, conf={"tls": {"enabled": True, "cert_file": crt,
                                                "key_file": key}}).start()
        try:
            def peer_cn():
                c = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                c.check_hostname = False
                c.verify_mode = ssl.CERT_NONE
                with socket.create_connection(("127.0.0.1", d.port), timeout=5) as s:
                    with c.wrap_socket(s) as t:
                        der = t.getpeercert(binary_form=True)
                return b"second.test" in der and "second" or b"first.test" in der and "first"
            self.assertEqual(peer_cn(), "first")
            crt2, key2 = pki.cert("b", cn="second.test")
            os.replace(crt2, crt)
            os.replace(key2, key)
            r = d.ctl("reload", "--wait")
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            lib.wait_until(lambda: peer_cn() == "second", 15, what="new certificate served")
        finally:
            d.stop()
            pki.cleanup()
