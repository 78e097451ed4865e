"""Integration-test harness: spawns the real csmcpd against real PostgreSQL and Redis.

The one place for what every integration test needs (tests/README.md says where a test goes):
  waiting      wait_for(condition, timeout), wait_for_timed: poll a condition, never sleep
  processes    need_tool, pg_bindir, free_port, port_free, worker_pids, assert_no_crash
  PostgreSQL   psql / psql_run / psql_json (the one psql helper), ScratchPostgres (the one
               throw-away cluster), ctl_db (csmcpctl against a database URL), with_db
  Redis        redis_command
  MCP client   http_request, mcp_headers; mcp_post / mcp_initialize / mcp_rpc (one request on
               a fresh connection); SseStream (a stream read event by event); McpSession (a
               keep-alive client: initialize, request, call_tool, call_ok); run_sdk_workflow
               (a script on sdk_lib.mjs through the official TypeScript SDK client)
  csmcpd       Csmcpd (a supervisor with its workers in a temp dir, on free ports)
Domain helpers stay beside their tests: data_util.py (fixtures, schema checks, id prefixes),
ops_util.py (systemd notify socket, unit and config parsers), sec_util.py (PKI, JWT, scratch
databases holding the security migrations), sup_util.py (load generator, /proc, metrics).

Stdlib only. The database and Redis come from the environment that `scripts/dev test` sets:
  CSMCP_TEST_DATABASE_URL   libpq URI of a migrated (and seeded) test database
  CSMCP_TEST_REDIS_URL      redis://127.0.0.1:PORT/DB
  CSMCP_BUILD_DIR           build directory holding supervisor/ and worker/ binaries
A test that needs one of them and finds it unset fails (never skips): CI must provide them.
"""
import glob
import http.client
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest
from urllib.parse import urlparse

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


# ---------------------------------------------------------------------------------- waiting

def wait_for(condition, timeout, interval=0.05, what="condition"):
    """Polls condition() until it returns something truthy and returns that value. An exception
    from condition counts as "not yet". Raises AssertionError naming `what` after timeout
    seconds. Wait for an event with this, never with a bare time.sleep."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            v = condition()
            if v:
                return v
        except Exception:  # noqa: BLE001 - not ready yet
            pass
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.1fs waiting for %s" % (timeout, what))
        time.sleep(interval)


def wait_for_timed(condition, timeout, interval=0.02, what="condition"):
    """wait_for that also returns how long it took: (value, seconds)."""
    t0 = time.monotonic()
    v = wait_for(condition, timeout, interval, what)
    return v, time.monotonic() - t0


wait_until = wait_for  # the older name, still used by many tests


# -------------------------------------------------------------------------- processes, tools

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_free(port):
    """True when nothing listens on (or holds) 127.0.0.1:port."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def pg_bindir():
    """The newest PostgreSQL server bin directory (PGBIN overrides)."""
    if os.environ.get("PGBIN"):
        return os.environ["PGBIN"]
    d = sorted(glob.glob("/usr/lib/postgresql/*/bin"),
               key=lambda p: int(p.split("/")[-2]) if p.split("/")[-2].isdigit() else 0)
    if not d:
        raise AssertionError("PostgreSQL server binaries not found (Debian: postgresql)")
    return d[-1]


def need_tool(name, package=None):
    """Path of a command-line tool (PATH, then the PostgreSQL bin directory); fails, never
    skips, when it is missing."""
    path = shutil.which(name)
    if path:
        return path
    for d in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if os.path.exists(os.path.join(d, name)):
            return os.path.join(d, name)
    raise AssertionError("%s not found%s" % (
        name, ": install the Debian package %s" % package if package else ""))


def _as_postgres(argv):
    """initdb and postgres refuse to run as root: run them as the postgres user then."""
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--"] + argv
    return argv


# ------------------------------------------------------------------------------- PostgreSQL

def psql_run(url, sql, timeout=120):
    """Runs sql (one or more statements, ON_ERROR_STOP) with psql on url; returns the
    CompletedProcess (unaligned, tuples only), whatever the outcome."""
    return subprocess.run([need_tool("psql", "postgresql-client"), "-X", "-q", "-A", "-t",
                           "-v", "ON_ERROR_STOP=1", "-d", url],
                          input=sql, capture_output=True, text=True, timeout=timeout)


def psql(url, sql, timeout=120):
    """Runs sql and returns its output, stripped; AssertionError (with the SQL) if it fails."""
    r = psql_run(url, sql, timeout)
    if r.returncode != 0:
        raise AssertionError("psql failed: %s\nSQL: %s" % (r.stderr.strip(), sql[:500]))
    return r.stdout.strip()


def psql_json(url, sql):
    """psql of a query returning one JSON value; None when it returns no row."""
    out = psql(url, sql)
    return json.loads(out) if out else None


def with_db(url, db):
    """url with its database replaced by db."""
    return urlparse(url)._replace(path="/" + db).geturl()


def ctl_db(url, *args, env=None, stdin=None, timeout=300):
    """csmcpctl <args> with CSMCP_DATABASE_URL=url (the rest of the configuration from the
    environment). Returns the CompletedProcess."""
    e = dict(os.environ)
    e["CSMCP_DATABASE_URL"] = url
    e.update(env or {})
    return subprocess.run([CSMCPCTL] + list(args), env=e, input=stdin, capture_output=True,
                          text=True, timeout=timeout)


class ScratchPostgres:
    """A throw-away PostgreSQL cluster (initdb + pg_ctl) on 127.0.0.1, trust auth, superuser
    postgres, for tests that restart, drop or restore databases: never the shared test
    database. Port: the first free one from `port`, else any free port.

        pg = lib.ScratchPostgres(databases=["csmcp"]).start()   # or: with ... as pg:
        pg.url("csmcp"); pg.psql("SELECT 1"); pg.pg_ctl("restart")
        pg.stop()
    """

    def __init__(self, port=None, hba_first=(), databases=()):
        self.bindir = pg_bindir()
        self.port = None
        if port:
            self.port = next((p for p in range(port, port + 20) if port_free(p)), None)
        self.port = self.port or free_port()
        self.hba_first = hba_first
        self.databases = databases
        self.dir = tempfile.mkdtemp(prefix="csmcp-it-pg-")
        self.data = os.path.join(self.dir, "data")

    def start(self):
        os.makedirs(self.data)
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
            shutil.chown(self.data, "postgres", "postgres")
        self._run("initdb", "-D", self.data, "-U", "postgres", "--auth=trust", "-E", "UTF8",
                  "--locale=C.UTF-8")
        if self.hba_first:  # evaluated before initdb's trust lines
            hba = os.path.join(self.data, "pg_hba.conf")
            with open(hba) as f:
                rest = f.read()
            with open(hba, "w") as f:
                f.write("\n".join(self.hba_first) + "\n" + rest)
        with open(os.path.join(self.data, "postgresql.conf"), "a") as f:
            f.write("listen_addresses = '127.0.0.1'\nport = %d\n"
                    "unix_socket_directories = '%s'\nfsync = off\n"
                    "max_connections = 100\nlog_min_messages = warning\n" % (self.port, self.data))
        self.pg_ctl("start")
        for db in self.databases:
            self.psql('CREATE DATABASE "%s"' % db)
        return self

    def _run(self, tool, *args, check=True):
        r = subprocess.run(_as_postgres([os.path.join(self.bindir, tool)] + list(args)),
                           capture_output=True, text=True, timeout=120)
        if check and r.returncode != 0:
            raise AssertionError("%s failed: %s %s" % (tool, r.stdout, r.stderr))
        return r

    def pg_ctl(self, action, *extra):
        """pg_ctl start|stop|restart, waiting for it (60 s)."""
        self._run("pg_ctl", "-D", self.data, "-l", os.path.join(self.data, "server.log"), "-w",
                  "-t", "60", *extra, action)

    def url(self, db="postgres", user="postgres"):
        return "postgresql://%s@127.0.0.1:%d/%s" % (user, self.port, db)

    def psql(self, sql, db="postgres", check=True):
        """lib.psql on database db (check=False: the CompletedProcess, as psql_run)."""
        return psql(self.url(db), sql, 300) if check else psql_run(self.url(db), sql, 300)

    def stop(self):
        self._run("pg_ctl", "-D", self.data, "-m", "immediate", "-w", "-t", "30", "stop",
                  check=False)
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


# ------------------------------------------------------------------------------------ Redis

def redis_command(*args):
    """Runs one command on the test Redis (CSMCP_TEST_REDIS_URL); returns the raw reply."""
    u = urlparse(redis_url())
    db = (u.path or "/0").lstrip("/") or "0"

    def enc(*a):
        out = b"*%d\r\n" % len(a)
        for x in a:
            x = x.encode() if isinstance(x, str) else x
            out += b"$%d\r\n%s\r\n" % (len(x), x)
        return out

    with socket.create_connection((u.hostname or "127.0.0.1", u.port or 6379), timeout=5) as s:
        f = s.makefile("rb")
        if u.password:
            s.sendall(enc("AUTH", u.password))
            _resp_read(f)
        s.sendall(enc("SELECT", db) + enc(*args))
        _resp_read(f)
        return _resp_read(f)


def _resp_read(f):
    """Reads one complete RESP reply from f; returns its raw bytes."""
    line = f.readline()
    if not line:
        raise AssertionError("Redis closed the connection")
    kind, rest = line[:1], line[1:-2]
    if kind == b"$" and int(rest) >= 0:
        return line + f.read(int(rest) + 2)
    if kind == b"*" and int(rest) > 0:
        return line + b"".join(_resp_read(f) for _ in range(int(rest)))
    return line


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


# ------------------------------------------------------------------------------- MCP client

ACCEPT = "application/json, text/event-stream"


def mcp_headers(sid=None, version=PROTOCOL, accept=ACCEPT, extra=None, token=None):
    """Headers of a POST/GET/DELETE on /mcp (session headers only with a session id)."""
    h = {"Content-Type": "application/json", "Accept": accept}
    if sid:
        h["Mcp-Session-Id"] = sid
        h["MCP-Protocol-Version"] = version
    if token:
        h["Authorization"] = "Bearer " + token
    h.update(extra or {})
    return h


def mcp_post(port, body, sid=None, version=None, headers=None, timeout=10, host="127.0.0.1"):
    """POST /mcp on a fresh connection. body: dict/list (JSON-encoded) or raw str/bytes.
    Returns (status, headers lower-case, messages list, raw body)."""
    h = {"Content-Type": "application/json", "Accept": ACCEPT}
    if sid:
        h["Mcp-Session-Id"] = sid
    if version:
        h["MCP-Protocol-Version"] = version
    h.update(headers or {})
    st, hd, data = http_request(port, "POST", "/mcp", body=body, headers=h, timeout=timeout,
                                host=host)
    msgs = parse_mcp_body(hd, data) if data and st < 500 else []
    return st, hd, msgs, data


def mcp_initialize(port, version=PROTOCOL, capabilities=None):
    """initialize + notifications/initialized on fresh connections; returns (sid, result)."""
    st, hd, msgs, raw = mcp_post(port, {
        "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": version, "capabilities": capabilities or {},
            "clientInfo": {"name": "csmcp-tests", "version": "1"}}})
    assert st == 200, (st, raw)
    sid = hd["mcp-session-id"]
    neg = msgs[0]["result"]["protocolVersion"]
    st, _, _, raw = mcp_post(port, {"jsonrpc": "2.0", "method": "notifications/initialized"},
                             sid, neg)
    assert st == 202, (st, raw)
    return sid, msgs[0]["result"]


def mcp_rpc(port, method, params=None, sid=None, version=PROTOCOL, id=7, **kw):
    """One JSON-RPC request with mcp_post; returns what mcp_post returns."""
    msg = {"jsonrpc": "2.0", "id": id, "method": method}
    if params is not None:
        msg["params"] = params
    return mcp_post(port, msg, sid, version, **kw)


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
        """Reads JSON-RPC messages until pred(msg) is true; returns (all msgs, event ids)."""
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
        return mcp_headers(self.session_id, self.protocol, token=self.token)

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

    def list_tools(self):
        """Every tool of tools/list, following nextCursor (the list is paginated)."""
        tools, cursor = [], None
        for _ in range(100):  # bounded: a server that never ends the list fails the test
            page = self.request("tools/list", {"cursor": cursor} if cursor else {})
            tools += page["tools"]
            cursor = page.get("nextCursor")
            if not cursor:
                return tools
        raise AssertionError("tools/list did not end after 100 pages")

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
            # the local audit spool of this instance only (issue 26)
            "audit": {"spool_dir": os.path.join(self.dir, "audit-spool")},
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


def run_sdk_workflow(script, *args, workers=2, conf=None, timeout=120):
    """Runs tests/integration/<script> (an .mjs built on sdk_lib.mjs) with the official
    TypeScript SDK pinned in tests/client against a fresh Csmcpd: node <script> URL SDK_DIR
    *args. Returns (exit status, stdout + stderr); the script ends with "N passed, N failed"."""
    import importlib.util
    client_dir = os.path.join(ROOT, "tests", "client")
    # tests/client/run.py owns the pinned node and `npm ci`; load it under its own name.
    spec = importlib.util.spec_from_file_location("csmcp_client_run",
                                                  os.path.join(client_dir, "run.py"))
    client_run = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(client_run)
    client_run.npm_install()
    sdk = os.path.join(client_dir, "node_modules", "@modelcontextprotocol", "sdk", "dist", "esm")
    with Csmcpd(workers=workers, conf=conf) as d:
        p = subprocess.run([client_run.NODE, os.path.join(ROOT, "tests", "integration", script),
                            "http://127.0.0.1:%d/mcp" % d.port, sdk] + [str(a) for a in args],
                           capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout + p.stderr


def assert_no_crash(d):
    """Fails when a worker of Csmcpd d died of a signal other than our own SIGKILL, or a
    sanitizer reported something in its log."""
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
