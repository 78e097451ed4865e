"""Helpers of the package, upgrade/rollback, rolling-deploy and DR tests (tests/package).

Stdlib only, on top of tests/integration/lib.py (MCP client, psql, waiting). Environment (set by
`scripts/dev test`, or by hand after `scripts/dev services test`):
  CSMCP_PG_ADMIN_URL      postgres superuser URL of the test cluster (a scratch database per test)
  CSMCP_TEST_REDIS_URL    redis://127.0.0.1:PORT/DB
  CSMCP_PKG_DEB           the .deb under test (default: the newest dist/csmcp_*.deb)
"""
import glob
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import lib  # noqa: E402

SDK_CLIENT_DIR = os.path.join(ROOT, "tests", "client")


def run(argv, timeout=300, check=False, env=None, **kw):
    """subprocess.run with text output, without the CSMCP_<GROUP>_<KEY> variables scripts/dev
    exports (they would beat the configuration files the tests write: environment > file)."""
    if env is None:
        env = lib.clean_env()
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env, **kw)
    if check and r.returncode != 0:
        raise AssertionError("%s exited %d:\n%s\n%s" % (" ".join(argv), r.returncode,
                                                         r.stdout[-4000:], r.stderr[-4000:]))
    return r


def deb_under_test():
    deb = os.environ.get("CSMCP_PKG_DEB")
    if not deb:
        debs = sorted(glob.glob(os.path.join(ROOT, "dist", "csmcp_*.deb")), key=os.path.getmtime)
        if not debs:
            raise RuntimeError("no dist/csmcp_*.deb: run `scripts/dev package` first")
        deb = debs[-1]
    return deb


def deb_field(deb, field):
    return run(["dpkg-deb", "-f", deb, field], check=True).stdout.strip()


def admin_url():
    return lib.need_env("CSMCP_PG_ADMIN_URL")


def db_url(name, user="csmcp"):
    """URL of database `name` on the admin URL's server, as `user`."""
    base = admin_url().rsplit("/", 1)[0]
    return base.replace("postgres@", user + "@", 1) + "/" + name


def fresh_database(name):
    lib.psql(admin_url(), "DROP DATABASE IF EXISTS %s WITH (FORCE)" % name)
    lib.psql(admin_url(), "CREATE DATABASE %s OWNER csmcp" % name)
    return db_url(name)


def drop_database(name):
    lib.psql(admin_url(), "DROP DATABASE IF EXISTS %s WITH (FORCE)" % name)


def redis_url(db):
    return lib.redis_url().rsplit("/", 1)[0] + "/%d" % db


def purge_installed():
    """dpkg --purge csmcp when it is installed (a previous run that died half-way)."""
    r = run(["dpkg-query", "-W", "-f=${Status}", "csmcp"])
    if r.returncode == 0 and "not-installed" not in r.stdout:
        run(["dpkg", "--purge", "csmcp"], check=True)


def sdk_workflow(port, timeout=120):
    """The SDK data workflow (tests/integration/data_sdk_workflow.mjs) against 127.0.0.1:port:
    the smoke test of upgrade, rollback and deploy. Returns (ok, output)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("csmcp_client_run",
                                                  os.path.join(SDK_CLIENT_DIR, "run.py"))
    client_run = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(client_run)
    client_run.npm_install()
    sdk = os.path.join(SDK_CLIENT_DIR, "node_modules", "@modelcontextprotocol", "sdk", "dist", "esm")
    p = subprocess.run([client_run.NODE,
                        os.path.join(ROOT, "tests", "integration", "data_sdk_workflow.mjs"),
                        "http://127.0.0.1:%d/mcp" % port, sdk],
                       capture_output=True, text=True, timeout=timeout)
    out = p.stdout + p.stderr
    return p.returncode == 0 and "7 passed, 0 failed" in out, out


class Load:
    """A bounded keep-alive MCP load: `sessions` threads, each one McpSession (one TCP
    connection, kept alive) calling list_clients and, every `write_every`-th call,
    register_client. Every request counts: HTTP != 200, a JSON-RPC error, isError, a reset
    connection -- all failures. Acknowledged writes are kept with their time (DR drill RPO).
    Bounded by max_seconds and max_requests."""

    def __init__(self, port, sessions=4, write_every=5, max_seconds=180, max_requests=200000,
                 tag=None, pause=0.0):
        self.port, self.sessions, self.write_every = port, sessions, write_every
        self.max_seconds, self.max_requests, self.pause = max_seconds, max_requests, pause
        self.tag = tag or "ld" + secrets.token_hex(4)
        self.ok = self.failed = 0
        self.errors = []
        self.acked = []  # (monotonic time, wall time, client_id)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = []
        self._seq = 0

    def _count(self, ok, err=None):
        with self._lock:
            if ok:
                self.ok += 1
            else:
                self.failed += 1
                if len(self.errors) < 20:
                    self.errors.append(err)

    def _worker(self, n):
        deadline = time.monotonic() + self.max_seconds
        s = None
        i = 0
        while not self._stop.is_set() and time.monotonic() < deadline:
            with self._lock:
                if self.ok + self.failed >= self.max_requests:
                    return
            try:
                if s is None:
                    s = lib.McpSession(self.port)
                i += 1
                if self.write_every and i % self.write_every == 0:
                    with self._lock:
                        self._seq += 1
                        seq = self._seq
                    r = s.call_tool("register_client", {
                        "client_name": "Load %s %d" % (self.tag, seq),
                        "company_name": "Load Inc", "contract_value": 1200 + seq,
                        "licensed_seats": 5, "tier": "standard"})
                    if r.get("isError"):
                        raise AssertionError("register_client: %s" % r["content"][0].get("text"))
                    with self._lock:
                        self.acked.append((time.monotonic(), time.time(),
                                           r["structuredContent"]["client_id"]))
                else:
                    r = s.call_tool("list_clients", {})
                    if r.get("isError"):
                        raise AssertionError("list_clients: %s" % r["content"][0].get("text"))
                self._count(True)
            except Exception as e:  # every failure is counted, then a new session
                self._count(False, "%s: %r" % (time.strftime("%H:%M:%S"), e))
                try:
                    if s is not None:
                        s.conn.close()
                except Exception:
                    pass
                s = None
                time.sleep(0.05)
            if self.pause:
                time.sleep(self.pause)
        if s is not None:
            s.close()

    def start(self):
        for n in range(self.sessions):
            t = threading.Thread(target=self._worker, args=(n,), daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def signal_stop(self):
        """Asks the threads to stop after their current request (stop() waits for them)."""
        self._stop.set()

    def stop(self):
        self._stop.set()
        for t in self._threads:
            t.join(timeout=60)
        return self

    def summary(self):
        return "%d requests ok, %d failed (%d acknowledged writes)%s" % (
            self.ok, self.failed, len(self.acked),
            "" if not self.errors else "; first errors: " + "; ".join(self.errors[:5]))


class Server:
    """An installed csmcpd (any path) run in the background with a config file; its log in a
    temp file. Not systemd: the test machine (a container) has no booted systemd."""

    def __init__(self, csmcpd, conf, admin_port, log_path, env=None):
        self.csmcpd, self.conf, self.admin_port, self.log_path = csmcpd, conf, admin_port, log_path
        self.env = dict(lib.clean_env())
        self.env.update(env or {})
        self.proc = None

    def start(self, timeout=60):
        logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen([self.csmcpd, "-c", self.conf], env=self.env, stdout=logf,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        logf.close()

        def ready():
            if self.proc.poll() is not None:
                raise AssertionError("csmcpd exited %s:\n%s" % (self.proc.returncode, self.tail()))
            try:
                st, _, _ = lib.http_request(self.admin_port, "GET", "/ready", timeout=2)
            except OSError:
                return False
            return st == 200
        lib.wait_for(ready, timeout, interval=0.2, what="csmcpd /ready")
        return self

    def tail(self, n=40):
        try:
            with open(self.log_path, "rb") as f:
                return b"\n".join(f.read().splitlines()[-n:]).decode(errors="replace")
        except OSError:
            return ""

    def worker_exes(self):
        """The executable of every child of csmcpd (workers and monitor)."""
        out = []
        for pid in lib.worker_pids(self.proc.pid):
            try:
                out.append(os.readlink("/proc/%d/exe" % pid))
            except OSError:
                pass
        return out

    def kill(self):
        """SIGKILL to csmcpd and its workers (the host is lost)."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self, timeout=45):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)


def write_conf(path, port, admin_port, sock, database, redis, secret_file, workers=2,
               worker_binary="", extra=None):
    groups = {
        "server": {"listen": ["127.0.0.1:%d" % port], "workers": workers, "drain_timeout": 10,
                   "heartbeat_ms": 250, "worker_binary": worker_binary},
        "admin": {"listen": "127.0.0.1:%d" % admin_port},
        "control": {"socket": sock},
        "database": {"url": database, "pool_size": 2},
        "redis": {"url": redis},
        "auth": {"required": False},
        # The loads here are one anonymous principal at ~100 writes/s: the per-principal limits
        # (write 300/min) would answer 429, which these tests would count as failed requests.
        "ratelimit": {"enabled": False},
        "mcp": {"session_secret_file": secret_file},
        "log": {"level": "info", "format": "text"},
    }
    for g, kv in (extra or {}).items():
        groups.setdefault(g, {}).update(kv)
    lib.write_conf(path, groups)


def secret_file(directory):
    path = os.path.join(directory, "session_secret")
    with open(path, "w") as f:
        f.write(secrets.token_hex(32))
    os.chmod(path, 0o600)
    return path


def tmpdir(prefix):
    return tempfile.mkdtemp(prefix=prefix)


def dumps(x):
    return json.dumps(x, indent=1, sort_keys=True)
