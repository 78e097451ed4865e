"""Helpers for the MCP protocol tests (owner: core). Stdlib only; builds on lib.py."""
import http.client
import json
import socket
import time

import lib

ACCEPT = "application/json, text/event-stream"


def post(port, body, sid=None, version=None, headers=None, timeout=10, host="127.0.0.1"):
    """POST /mcp on a fresh connection. body: dict/list (JSON-encoded) or raw str/bytes.
    Returns (status, headers lower-case, messages list, raw body)."""
    h = {"Content-Type": "application/json", "Accept": ACCEPT}
    if sid:
        h["Mcp-Session-Id"] = sid
    if version:
        h["MCP-Protocol-Version"] = version
    h.update(headers or {})
    st, hd, data = lib.http_request(port, "POST", "/mcp", body=body, headers=h, timeout=timeout,
                                    host=host)
    msgs = lib.parse_mcp_body(hd, data) if data and st < 500 else []
    return st, hd, msgs, data


def initialize(port, version=lib.PROTOCOL, capabilities=None):
    """initialize + notifications/initialized on fresh connections; returns (sid, result)."""
    st, hd, msgs, raw = post(port, {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": version, "capabilities": capabilities or {},
        "clientInfo": {"name": "csmcp-core-tests", "version": "1"}}})
    assert st == 200, (st, raw)
    sid = hd["mcp-session-id"]
    neg = msgs[0]["result"]["protocolVersion"]
    st, _, _, raw = post(port, {"jsonrpc": "2.0", "method": "notifications/initialized"}, sid, neg)
    assert st == 202, (st, raw)
    return sid, msgs[0]["result"]


def rpc(port, method, params=None, sid=None, version=lib.PROTOCOL, id=7, **kw):
    msg = {"jsonrpc": "2.0", "id": id, "method": method}
    if params is not None:
        msg["params"] = params
    return post(port, msg, sid, version, **kw)


class SseStream:
    """An open text/event-stream response read event by event (bounded by timeouts)."""

    def __init__(self, port, method, headers, body=None, timeout=10):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        self.conn.request(method, "/mcp", body=json.dumps(body) if body is not None else None,
                          headers=headers)
        self.resp = self.conn.getresponse()
        self.status = self.resp.status
        self.headers = {k.lower(): v for k, v in self.resp.getheaders()}

    def next_event(self):
        """Returns {"id":..., "data":..., "retry":...} or None at end of stream."""
        ev = {}
        while True:
            try:
                line = self.resp.readline()
            except (socket.timeout, OSError):
                return None
            if not line:
                return ev or None
            line = line.decode().rstrip("\r\n")
            if line == "":
                if ev:
                    return ev
                continue
            if line.startswith(":"):
                continue
            k, _, v = line.partition(":")
            v = v[1:] if v.startswith(" ") else v
            ev[k] = ev.get(k, "") + v if k == "data" else v

    def messages_until(self, pred, deadline_s=10):
        """Reads JSON-RPC messages until pred(msg) is true; returns (all msgs, last event ids)."""
        out, ids = [], []
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            ev = self.next_event()
            if ev is None:
                break
            if "id" in ev:
                ids.append(ev["id"])
            if ev.get("data", "").strip():
                m = json.loads(ev["data"])
                out.append(m)
                if pred(m):
                    break
        return out, ids

    def close(self):
        self.conn.close()


def mcp_headers(sid=None, version=lib.PROTOCOL, accept=ACCEPT, extra=None):
    h = {"Content-Type": "application/json", "Accept": accept}
    if sid:
        h["Mcp-Session-Id"] = sid
        h["MCP-Protocol-Version"] = version
    h.update(extra or {})
    return h


def assert_no_crash(d):
    """Fails when a worker of d died of a signal other than our own SIGKILL, or a sanitizer
    reported something."""
    try:
        with open(d.log_path, "rb") as f:
            log = f.read().decode(errors="replace")
    except OSError:
        return
    bad = [l for l in log.splitlines()
           if ("killed by signal" in l and "signal 9" not in l) or "AddressSanitizer" in l
           or "runtime error:" in l]
    if bad:
        raise AssertionError("worker crash or sanitizer report:\n" + "\n".join(bad[:20]))


def redis_command(*args):
    """Runs one command on the test Redis (CSMCP_TEST_REDIS_URL) and returns the raw reply."""
    from urllib.parse import urlparse
    u = urlparse(lib.redis_url())
    db = (u.path or "/0").lstrip("/") or "0"

    def enc(*a):
        out = b"*%d\r\n" % len(a)
        for x in a:
            x = x.encode() if isinstance(x, str) else x
            out += b"$%d\r\n%s\r\n" % (len(x), x)
        return out

    with socket.create_connection((u.hostname or "127.0.0.1", u.port or 6379), timeout=5) as s:
        if u.password:
            s.sendall(enc("AUTH", u.password))
            s.recv(1024)
        s.sendall(enc("SELECT", db) + enc(*args))
        time.sleep(0.05)
        return s.recv(65536)
