"""Integration-test harness: spawns the real csmcpd against real PostgreSQL and Redis.

Stdlib only. The database and Redis come from the environment that `scripts/dev test` sets:
  CSMCP_TEST_DATABASE_URL   libpq URI of a migrated (and seeded) test database
  CSMCP_TEST_REDIS_URL      redis://127.0.0.1:PORT/DB
  CSMCP_BUILD_DIR           build directory holding supervisor/ and worker/ binaries
A test that needs one of them and finds it unset fails (never skips): CI must provide them.
"""
import http.client
import json
import os
import secrets
import signal
import socket
import subprocess
import tempfile
import time
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("CSMCP_BUILD_DIR", os.path.join(ROOT, "build"))
CSMCPD = os.path.join(BUILD, "supervisor", "csmcpd")
CSMCPCTL = os.path.join(BUILD, "supervisor", "csmcpctl")
WORKER = os.path.join(BUILD, "worker", "csmcp-worker")
PROTOCOL = "2025-11-25"


def need_env(name):
    v = os.environ.get(name)
    if not v:
        raise RuntimeError("%s is not set: run the suite through `scripts/dev test`" % name)
    return v


def database_url():
    return need_env("CSMCP_TEST_DATABASE_URL")


def redis_url():
    return need_env("CSMCP_TEST_REDIS_URL")


CONFIG_GROUPS = ("SERVER", "HTTP", "TLS", "ADMIN", "CONTROL", "DATABASE", "REDIS", "AUTH",
                 "RATELIMIT", "MCP", "SECRETS", "AUDIT", "LOG")


def clean_env():
    """os.environ without CSMCP_<GROUP>_<KEY> overrides: scripts/dev exports some (database,
    Redis, session secret file) for csmcpctl, and they would silently beat the configuration a
    test writes (environment > file)."""
    return {k: v for k, v in os.environ.items()
            if not any(k.startswith("CSMCP_%s_" % g) for g in CONFIG_GROUPS)}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(pred, timeout, interval=0.05, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            v = pred()
            if v:
                return v
        except Exception:
            pass
        time.sleep(interval)
    raise AssertionError("timed out after %.1fs waiting for %s" % (timeout, what))


def _conf_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_conf_value(x) for x in v) + "]"
    return json.dumps(str(v))


def write_conf(path, groups):
    """groups: {"server": {"workers": 4, ...}, ...} -> libconfig file."""
    with open(path, "w") as f:
        for g, kv in groups.items():
            f.write("%s = {\n" % g)
            for k, v in kv.items():
                f.write("  %s = %s;\n" % (k, _conf_value(v)))
            f.write("};\n")


def http_request(port, method, path, body=None, headers=None, timeout=10, host="127.0.0.1"):
    """One request on a fresh connection. Returns (status, headers dict lower-case, body bytes)."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        data = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data
    finally:
        conn.close()


def parse_mcp_body(headers, data):
    """Returns the list of JSON-RPC messages in a JSON or SSE response body."""
    ctype = headers.get("content-type", "")
    if ctype.startswith("text/event-stream"):
        out = []
        for event in data.decode().split("\n\n"):
            lines = [l[5:].lstrip() for l in event.split("\n") if l.startswith("data:")]
            payload = "\n".join(lines).strip()
            if payload:
                out.append(json.loads(payload))
        return out
    if not data:
        return []
    v = json.loads(data)
    return v if isinstance(v, list) else [v]


class McpSession:
    """A minimal MCP Streamable-HTTP client over one keep-alive connection."""

    def __init__(self, port, token=None, protocol=PROTOCOL, capabilities=None):
        self.port = port
        self.token = token
        self.protocol = protocol
        self.session_id = None
        self.next_id = 1
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.init_result = self.request("initialize", {
            "protocolVersion": protocol,
            "capabilities": capabilities or {},
            "clientInfo": {"name": "csmcp-tests", "version": "1"},
        })
        self.notify("notifications/initialized")

    def headers(self):
        h = {"Content-Type": "application/json",
             "Accept": "application/json, text/event-stream"}
        if self.session_id:
            h["Mcp-Session-Id"] = self.session_id
            h["MCP-Protocol-Version"] = self.protocol
        if self.token:
            h["Authorization"] = "Bearer " + self.token
        return h

    def post(self, msg):
        self.conn.request("POST", "/mcp", body=json.dumps(msg), headers=self.headers())
        r = self.conn.getresponse()
        data = r.read()
        hdrs = {k.lower(): v for k, v in r.getheaders()}
        if "mcp-session-id" in hdrs and self.session_id is None:
            self.session_id = hdrs["mcp-session-id"]
        return r.status, hdrs, data

    def request_raw(self, method, params=None):
        msg = {"jsonrpc": "2.0", "id": self.next_id, "method": method}
        self.next_id += 1
        if params is not None:
            msg["params"] = params
        status, hdrs, data = self.post(msg)
        return status, hdrs, parse_mcp_body(hdrs, data) if data else []

    def request(self, method, params=None):
        """Returns the result; raises McpError on a JSON-RPC error or an HTTP error."""
        status, hdrs, msgs = self.request_raw(method, params)
        if status != 200:
            raise McpError(status, None, "HTTP %d" % status)
        final = [m for m in msgs if "result" in m or "error" in m]
        if not final:
            raise McpError(status, None, "no response message")
        m = final[-1]
        if "error" in m:
            raise McpError(status, m["error"].get("code"), m["error"].get("message"),
                           m["error"].get("data"))
        return m["result"]

    def notify(self, method, params=None):
        msg = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            msg["params"] = params
        status, _, _ = self.post(msg)
        if status != 202:
            raise McpError(status, None, "notification got HTTP %d" % status)

    def call_tool(self, name, arguments=None):
        """Returns the CallToolResult (check result["isError"])."""
        return self.request("tools/call", {"name": name, "arguments": arguments or {}})

    def call_ok(self, name, arguments=None):
        """Calls a tool that must succeed; returns its structuredContent."""
        r = self.call_tool(name, arguments)
        if r.get("isError"):
            raise AssertionError("%s failed: %s" % (name, r["content"][0].get("text")))
        return r.get("structuredContent")

    def close(self):
        try:
            self.conn.request("DELETE", "/mcp", headers=self.headers())
            self.conn.getresponse().read()
        except Exception:
            pass
        self.conn.close()


class McpError(Exception):
    def __init__(self, status, code, message, data=None):
        super().__init__("HTTP %s code %s: %s" % (status, code, message))
        self.status, self.code, self.message, self.data = status, code, message, data


class Csmcpd:
    """A csmcpd supervisor with its workers, configured in a temp dir, on free ports.

    conf: extra settings {"group": {"key": value}} merged over the harness defaults.
    """

    def __init__(self, workers=2, conf=None, env=None, fixtures=False, auth=False,
                 need_db=True, need_redis=True):
        self.dir = tempfile.mkdtemp(prefix="csmcp-it-")
        self.port = free_port()
        self.admin_port = free_port()
        self.socket = os.path.join(self.dir, "ctl.sock")
        self.conf_path = os.path.join(self.dir, "csmcp.conf")
        self.log_path = os.path.join(self.dir, "csmcpd.log")
        groups = {
            "server": {"listen": ["127.0.0.1:%d" % self.port], "workers": workers,
                       "worker_binary": WORKER, "drain_timeout": 10, "heartbeat_ms": 250},
            "admin": {"listen": "127.0.0.1:%d" % self.admin_port},
            "control": {"socket": self.socket},
            "auth": {"required": auth},
            "mcp": {"conformance_fixtures": fixtures},
            "log": {"level": "info"},
        }
        if need_db:
            groups["database"] = {"url": database_url(), "pool_size": 2}
        if need_redis:
            groups["redis"] = {"url": redis_url()}
        for g, kv in (conf or {}).items():
            groups.setdefault(g, {}).update(kv)
        self.groups = groups
        write_conf(self.conf_path, groups)
        self.env = clean_env()
        self.env.setdefault("CSMCP_SESSION_SECRET", secrets.token_hex(32))
        self.env.update(env or {})
        self.proc = None
        self.logf = None

    def rewrite_conf(self, updates):
        for g, kv in updates.items():
            self.groups.setdefault(g, {}).update(kv)
        write_conf(self.conf_path, self.groups)

    def start(self, wait_ready=True, timeout=30):
        self.logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen([CSMCPD, "-c", self.conf_path], env=self.env,
                                     stdout=self.logf, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        if wait_ready:
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout=30):
        def ready():
            if self.proc.poll() is not None:
                raise AssertionError("csmcpd exited with %s; log:\n%s" %
                                     (self.proc.returncode, self.log_tail()))
            st, _, _ = http_request(self.admin_port, "GET", "/ready", timeout=2)
            return st == 200
        try:
            wait_until(ready, timeout, what="csmcpd /ready")
        except AssertionError as e:
            raise AssertionError("%s\nlog:\n%s" % (e, self.log_tail()))

    def log_tail(self, n=60):
        try:
            with open(self.log_path, "rb") as f:
                return b"\n".join(f.read().splitlines()[-n:]).decode(errors="replace")
        except OSError:
            return ""

    def ctl(self, *args, timeout=60):
        return subprocess.run([CSMCPCTL, "-s", self.socket] + list(args), env=self.env,
                              capture_output=True, text=True, timeout=timeout)

    def ctl_db(self, *args, timeout=300):
        """csmcpctl -c CONF <args> (database commands)."""
        return subprocess.run([CSMCPCTL, "-c", self.conf_path] + list(args), env=self.env,
                              capture_output=True, text=True, timeout=timeout)

    def get(self, path, **kw):
        return http_request(self.port, "GET", path, **kw)

    def admin(self, path):
        return http_request(self.admin_port, "GET", path)

    def session(self, **kw):
        return McpSession(self.port, **kw)

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, timeout=30):
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
        if self.logf:
            self.logf.close()
        return self.proc.returncode

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def worker_pids(supervisor_pid):
    """PIDs of the supervisor's direct children (its workers)."""
    out = []
    try:
        with open("/proc/%d/task/%d/children" % (supervisor_pid, supervisor_pid)) as f:
            out = [int(x) for x in f.read().split()]
    except OSError:
        pass
    return sorted(out)


class TestCase(unittest.TestCase):
    maxDiff = None
