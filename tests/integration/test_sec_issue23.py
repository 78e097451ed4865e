"""Issue 23 regression tests (attack run findings). Each test failed on main 49b645f.

Finding 1 (parser half): overlong UTF-8 and UTF-16 surrogates in a JSON string are a parse
error (-32700, HTTP 400), raw or as \\u escapes.
Finding 4: U+0000 in a string is refused, never cut.
Finding 7: lenient HTTP framing (duplicate Host/Origin, whitespace before the colon, bare LF,
obs-fold) is answered 400 before any handler runs.
"""
import json
import socket
import time

import lib
import sec_util as su

ACCEPT = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}


def raw(port, data, timeout=5):
    """Sends raw bytes, returns (status or None, bytes read until close or timeout)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
        buf = b""
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                buf += chunk
                if b"\r\n\r\n" in buf:
                    head, _, body = buf.partition(b"\r\n\r\n")
                    cl = [l for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")]
                    if cl and len(body) >= int(cl[0].split(b":")[1]):
                        break
        except (ConnectionResetError, socket.timeout):
            pass
    if not buf.startswith(b"HTTP/1."):
        return None, buf
    return int(buf.split(b" ", 2)[1]), buf


class Issue23(lib.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = lib.Csmcpd(workers=2, auth=True, conf={"ratelimit": {
            "key_per_minute": 1000000, "tool_per_minute": 1000000,
            "write_per_minute": 1000000}}).start()
        cls.admin_token = su.create_key(cls.d.conf_path, "read,write,admin", "i23-admin")
        cls.read_token = su.create_key(cls.d.conf_path, "read", "i23-read")

    @classmethod
    def tearDownClass(cls):
        cls.d.stop()

    def session(self, token):
        return lib.McpSession(self.d.port, token=token)

    def post_bytes(self, s, body):
        """POSTs raw body bytes on session s; returns (status, messages)."""
        s.conn.request("POST", "/mcp", body=body, headers=s.headers())
        r = s.conn.getresponse()
        data = r.read()
        hdrs = {k.lower(): v for k, v in r.getheaders()}
        return r.status, lib.parse_mcp_body(hdrs, data) if data else []

    # ---- finding 7 -----------------------------------------------------------------------

    def req(self, head_lines, body=b"", sep=b"\r\n"):
        return sep.join(head_lines) + sep + sep + body

    def test_f7_lenient_http_refused(self):
        port = self.d.port
        host = b"Host: 127.0.0.1:%d" % port
        auth = b"Authorization: Bearer " + self.read_token.encode()
        # initialize: a server that accepts the framing answers 200 (main did, for most cases)
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": lib.PROTOCOL, "capabilities": {},
            "clientInfo": {"name": "i23", "version": "1"}}}).encode()
        cl = b"Content-Length: %d" % len(body)
        base = [b"POST /mcp HTTP/1.1", host, auth, b"Content-Type: application/json",
                b"Accept: application/json, text/event-stream"]
        cases = {
            "duplicate Host": self.req(base + [b"Host: evil.example", cl], body),
            "duplicate Origin": self.req(base + [b"Origin: http://127.0.0.1:%d" % port,
                                                 b"Origin: http://evil.example", cl], body),
            "space before colon in Transfer-Encoding": self.req(
                base + [b"Transfer-Encoding : chunked"], b"%x\r\n%s\r\n0\r\n\r\n" % (
                    len(body), body)),
            "space before colon in Content-Length": self.req(
                base + [b"Content-Length : %d" % len(body)], body),
            "bare LF line ends": self.req(base + [cl], body, sep=b"\n"),
            "bare LF in one line": b"\r\n".join(base[:2]) + b"\n" + b"\r\n".join(base[2:] + [cl])
            + b"\r\n\r\n" + body,
            "obs-fold": self.req(base + [b"X-Folded: a", b" b", cl], body),
            "obs-fold with tab": self.req(base + [b"X-Folded: a", b"\tb", cl], body),
            "Content-Length and Transfer-Encoding": self.req(
                base + [cl, b"Transfer-Encoding: chunked"], b"%x\r\n%s\r\n0\r\n\r\n" % (
                    len(body), body)),
            "duplicate Content-Length": self.req(base + [cl, cl], body),
            "duplicate Authorization": self.req(base + [auth, cl], body),
            "HTTP/1.1 without Host": self.req([base[0]] + base[2:] + [cl], body),
        }
        for name, data in cases.items():
            st, buf = raw(port, data)
            self.assertEqual(st, 400, "%s: got %s %r" % (name, st, buf[:200]))
        # control: the same request well-formed is served
        st, buf = raw(port, self.req(base + [cl], body))
        self.assertEqual(st, 200, buf[:300])
        # empty lines before the request line are still allowed (RFC 9112 2.2)
        st, _ = raw(port, b"\r\n" + self.req([b"GET /health HTTP/1.1", host]))
        self.assertEqual(st, 200)
        # a pipelined second request whose head has a bare LF is refused too
        ok = self.req([b"GET /health HTTP/1.1", host])
        st, buf = raw(port, ok + b"GET /health HTTP/1.1\nHost: x\n\n")
        self.assertEqual(buf.count(b"HTTP/1.1 200"), 1, buf[:400])
        self.assertIn(b"HTTP/1.1 400", buf)

    # ---- finding 1 (parser) and 4 -----------------------------------------------------------

    def test_f1_invalid_utf8_is_a_parse_error(self):
        s = self.session(self.read_token)
        try:
            pre = b'{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"list_clients",' \
                  b'"arguments":{"search":"'
            for bad in (b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\\udc00",
                        b"\\ud800", b"\xe0\x80\xaf"):
                st, msgs = self.post_bytes(s, pre + bad + b'"}}}')
                self.assertEqual(st, 400, bad)
                self.assertEqual(msgs[0]["error"]["code"], -32700, (bad, msgs))
            # valid multibyte text still works
            st, msgs = self.post_bytes(s, pre + "é€😀".encode() + b'"}}}')
            self.assertEqual(st, 200, msgs)
            self.assertIn("result", msgs[0], msgs)
        finally:
            s.close()

    def test_f4_nul_in_strings_refused(self):
        s = self.session(self.read_token)
        try:
            for args in ({"client_id": "x\u0000' OR 1=1--"}, {"search": "\u0000abc"}):
                name = "get_client_overview" if "client_id" in args else "list_clients"
                msg = {"jsonrpc": "2.0", "id": 9, "method": "tools/call",
                       "params": {"name": name, "arguments": args}}
                st, msgs = self.post_bytes(s, json.dumps(msg).encode())
                self.assertTrue(msgs and "error" in msgs[0], (args, st, msgs))
                self.assertIn(msgs[0]["error"]["code"], (-32602, -32700), msgs)
                self.assertIn("NUL", msgs[0]["error"]["message"], msgs)
        finally:
            s.close()


if __name__ == "__main__":
    import unittest
    unittest.main()
