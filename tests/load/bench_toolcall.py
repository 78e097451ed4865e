#!/usr/bin/python3
"""bench_toolcall.py - tools/call throughput: csmcpd against the official TypeScript SDK server.

In one invocation: start every target on 127.0.0.1, open one initialized MCP session per
connection, warm up, then run wrk (tests/load/toolcall.lua: keep-alive POST tools/call
test_simple_text, a fresh JSON-RPC id per request) for --duration seconds per target, in
--rounds interleaved rounds (A B C D A B C D ...); each target reports its median round:
throughput, p50/p99/p99.9 latency, errors by kind, the CPU used by the server (and Redis) and by
wrk, requests per server CPU-second, and RSS. Prints the ratio csmcpd / best SDK configuration.

Targets (--targets, comma-separated; default all):
  csmcpd        csmcpd, N workers (--workers, default 4), conformance fixtures on, auth off
  csmcpd-auth   the same with auth.required = true and an API key (Bearer)
  csmcpd-nolimit  csmcpd with the rate limiter off too (auth off, audit on)
  csmcpd-bare   no auth, no rate limiter, no audit trail: the SDK server's feature set
  csmcpd-auth-commit, csmcpd-auth-drop  csmcpd-auth without the audit spool (answer after
                the PostgreSQL commit) and with audit.on_failure = drop (issue 26)
  csmcpd-modern, csmcpd-auth-modern  csmcpd and csmcpd-auth on the stateless 2026-07-28 wire
                (no session: _meta, MCP-Protocol-Version/Mcp-Method/Mcp-Name; docs/protocol.md)
  sdk-stateful  sdk_server.mjs --mode stateful (one process; sessions in memory)
  sdk-stateless sdk_server.mjs --mode stateless under node:cluster with 2 workers

csmcpd needs PostgreSQL and Redis: CSMCP_TEST_DATABASE_URL / CSMCP_TEST_REDIS_URL (or
CSMCP_DATABASE_URL / CSMCP_REDIS_URL, as printed by `scripts/dev services run`), a migrated
database, and a build (CSMCP_BUILD_DIR, default build/). The SDK needs `npm ci` in tests/load.
Loopback only; every run is bounded (--duration <= 30 s, --connections <= 1024).
Ports: 19500-19999 (csmcpd 19510/19511 and 19520/19521, SDK 19600/19601), plus --port-offset;
a target whose port is already bound (e.g. another engineer's benchmark: csmcpd binds with
SO_REUSEPORT, so two servers would silently share the port) is refused.

Exit status: 0 when every measured run completed with zero errors, 1 otherwise, 2 on set-up
failure. --min-ratio R additionally fails when csmcpd (or the first csmcpd target) / best SDK < R.
"""
import argparse
import json
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))

PROTOCOL = "2025-11-25"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(msg):
    print("[bench] " + msg, file=sys.stderr, flush=True)


def wait_port(port, timeout, proc=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("process exited with %s" % proc.returncode)
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("port %d not listening after %ds" % (port, timeout))


def proc_tree(pid):
    """pid and all its descendants (via /proc/<pid>/task/*/children)."""
    out, todo = [], [pid]
    while todo and len(out) < 10000:
        p = todo.pop()
        out.append(p)
        try:
            for t in os.listdir("/proc/%d/task" % p):
                with open("/proc/%d/task/%s/children" % (p, t)) as f:
                    todo.extend(int(x) for x in f.read().split())
        except OSError:
            pass
    return out


def cpu_seconds(pids):
    total = 0.0
    for p in pids:
        try:
            with open("/proc/%d/stat" % p) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime
        except (OSError, IndexError, ValueError):
            pass
    return total


def rss_kib(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def redis_pid(url):
    """process_id of the Redis server behind url (its CPU is part of csmcpd's cost)."""
    m = re.match(r"redis://(?:[^@/]*@)?([^:/]+):(\d+)", url or "")
    if not m or shutil.which("redis-cli") is None:
        return None
    try:
        out = subprocess.run(["redis-cli", "-h", m.group(1), "-p", m.group(2), "info", "server"],
                             capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = re.search(r"^process_id:(\d+)", out, re.M)
    return int(m.group(1)) if m else None


def postgres_pids(url):
    """The PostgreSQL postmaster behind url (an admin URL) and its children: csmcpd's audit
    trail is written there on every tools/call, so its CPU is part of csmcpd's cost."""
    if not url or shutil.which("psql") is None:
        return []
    try:
        out = subprocess.run(["psql", url, "-Atc", "SHOW data_directory"], capture_output=True,
                             text=True, timeout=10).stdout.strip()
        with open(os.path.join(out, "postmaster.pid")) as f:
            pm = int(f.readline())
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return []
    return proc_tree(pm)


# --- minimal MCP client (stdlib) used to open sessions before the load ----------------------

def open_session(port, token=None):
    """initialize + notifications/initialized on a fresh connection; returns the session id
    (None for a stateless server)."""
    import http.client
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    h = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
    if token:
        h["Authorization"] = "Bearer " + token
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": PROTOCOL, "capabilities": {},
        "clientInfo": {"name": "csmcp-bench", "version": "1"}}})
    conn.request("POST", "/mcp", body=body, headers=h)
    r = conn.getresponse()
    data = r.read()
    if r.status != 200 or b'"result"' not in data:
        raise RuntimeError("initialize: HTTP %d %s" % (r.status, data[:200]))
    sid = r.getheader("Mcp-Session-Id")
    if sid:
        h["Mcp-Session-Id"] = sid
    h["MCP-Protocol-Version"] = PROTOCOL
    conn.request("POST", "/mcp", body=json.dumps(
        {"jsonrpc": "2.0", "method": "notifications/initialized"}), headers=h)
    r = conn.getresponse()
    r.read()
    if r.status != 202:
        raise RuntimeError("notifications/initialized: HTTP %d" % r.status)
    # one real call, so a broken target fails here with a readable reason
    conn.request("POST", "/mcp", body=json.dumps({"jsonrpc": "2.0", "id": 2, "method":
                 "tools/call", "params": {"name": "test_simple_text", "arguments": {}}}),
                 headers=h)
    r = conn.getresponse()
    data = r.read()
    if r.status != 200 or b"This is a simple text response for testing." not in data:
        raise RuntimeError("tools/call test_simple_text: HTTP %d %s" % (r.status, data[:300]))
    conn.close()
    return sid


# --- targets ------------------------------------------------------------------------------

class SdkTarget:
    def __init__(self, name, mode, port, node):
        self.name, self.mode, self.port, self.node = name, mode, port, node
        self.proc = None
        self.token = None
        self.desc = ("TypeScript SDK 1.x, stateful StreamableHTTPServerTransport, JSON responses,"
                     " 1 process" if mode == "stateful" else
                     "TypeScript SDK 1.x, stateless, node:cluster 2 workers, JSON responses")

    def start(self):
        if not os.path.isdir(os.path.join(HERE, "node_modules", "@modelcontextprotocol", "sdk")):
            raise RuntimeError("run `npm ci` in tests/load first")
        # A larger young generation: fewer scavenges under load (measured: +40..70% req/s
        # for the stateful server on this machine); the SDK's own code is unchanged.
        args = [self.node, "--max-semi-space-size=64", os.path.join(HERE, "sdk_server.mjs"),
                "--mode", self.mode,
                "--port", str(self.port)]
        if self.mode == "stateless":
            args += ["--workers", "2", "--sched", os.environ.get("BENCH_SDK_SCHED", "rr")]
        self.logf = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(args, cwd=HERE, stdout=self.logf, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        wait_port(self.port, 30, self.proc)

    def pids(self):
        return proc_tree(self.proc.pid)

    def helper_pids(self):
        return []

    def db_pids(self):
        return []

    def worker_pids(self):
        kids = [p for p in self.pids() if p != self.proc.pid]
        return kids or [self.proc.pid]

    def stop(self):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)


class CsmcpdTarget:
    def __init__(self, name, port, workers, auth, limiter=True, audit=True, modern=False,
                 audit_conf=None, audit_desc=""):
        self.name, self.port, self.workers, self.auth = name, port, workers, auth
        self.limiter, self.audit, self.modern = limiter, audit, modern
        self.audit_conf = audit_conf or {}
        self.d = None
        self.token = None
        self.desc = "csmcpd, %d workers, fixtures on, auth %s, rate limiter %s, audit %s" % (
            workers, "on" if auth else "off", "on" if limiter else "off",
            "on" if audit else "off") + (", 2026-07-28 wire (no session)" if modern else "") + \
            audit_desc

    def start(self):
        for a, b in (("CSMCP_TEST_DATABASE_URL", "CSMCP_DATABASE_URL"),
                     ("CSMCP_TEST_REDIS_URL", "CSMCP_REDIS_URL")):
            if not os.environ.get(a) and os.environ.get(b):
                os.environ[a] = os.environ[b]
        import lib  # tests/integration/lib.py
        self.lib = lib
        conf = {"server": {"listen": ["127.0.0.1:%d" % self.port]},
                "admin": {"listen": "127.0.0.1:%d" % (self.port + 1)},
                "log": {"level": "warning"},
                "database": {"pool_size": 4},
                # The limiter still runs (its Redis work is part of every request) but with
                # limits the benchmark's single session/key stays under.
                "ratelimit": {"key_per_minute": 10000000, "tool_per_minute": 10000000,
                              "write_per_minute": 10000000, "enabled": self.limiter},
                "audit": dict({"enabled": self.audit}, **self.audit_conf)}
        self.d = lib.Csmcpd(workers=self.workers, conf=conf, fixtures=True, auth=self.auth)
        self.d.port, self.d.admin_port = self.port, self.port + 1
        if self.auth:
            r, m = self.create_key()
            if not m:  # perhaps an unmigrated database: migrate once and retry
                mig = self.d.ctl_db("migrate")
                if mig.returncode != 0:
                    raise RuntimeError("csmcpctl key create: %s; migrate: %s" % (
                        (r.stderr or r.stdout).strip(), (mig.stderr or mig.stdout).strip()))
                r, m = self.create_key()
            if not m:
                raise RuntimeError("csmcpctl key create: %s" % (r.stderr or r.stdout))
            self.token = m.group(0)
        self.d.start(wait_ready=True, timeout=60)

    def create_key(self):
        r = self.d.ctl_db("key", "create", "--name", "bench-%d" % int(time.time() * 1000),
                          "--scopes", "read")
        m = re.search(r"csk_[A-Za-z0-9_-]+", r.stdout + r.stderr)
        return r, (m if r.returncode == 0 else None)

    def pids(self):
        return proc_tree(self.d.proc.pid)

    def helper_pids(self):
        p = redis_pid(os.environ.get("CSMCP_TEST_REDIS_URL"))
        return [p] if p else []

    def db_pids(self):
        return postgres_pids(os.environ.get("CSMCP_PG_ADMIN_URL"))

    def worker_pids(self):
        return [p for p in self.pids() if p != self.d.proc.pid]

    def stop(self):
        if self.d:
            self.d.stop()


# --- wrk ----------------------------------------------------------------------------------

def run_wrk(target, duration, connections, threads, sessions_file, timeout_s=5):
    env = dict(os.environ)
    env["BENCH_SESSIONS"] = sessions_file or ""
    env["BENCH_TOKEN"] = target.token or ""
    env["BENCH_PROTOCOL"] = PROTOCOL
    if getattr(target, "modern", False):
        env["BENCH_PROTOCOL"] = "2026-07-28"
        env["BENCH_MODERN"] = "1"
    args = ["wrk", "-t%d" % threads, "-c%d" % connections, "-d%ds" % duration,
            "--timeout", "%ds" % timeout_s, "--latency", "-s", os.path.join(HERE, "toolcall.lua"),
            "http://127.0.0.1:%d/mcp" % target.port]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    p = subprocess.run(args, env=env, capture_output=True, text=True, timeout=duration + 60)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    m = re.search(r"^RESULT (\{.*\})$", p.stdout, re.M)
    if p.returncode != 0 or not m:
        raise RuntimeError("wrk failed (%d): %s %s" % (p.returncode, p.stdout[-500:],
                                                       p.stderr[-500:]))
    res = json.loads(m.group(1))
    res["wrk_cpu_s"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return res


def port_free(port):
    """True when nothing listens on 127.0.0.1:port (a plain bind, without SO_REUSEPORT)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def prepare_target(t, a):
    """Starts t, opens one initialized session per connection, warms up."""
    for p in (t.port, t.port + 1) if isinstance(t, CsmcpdTarget) else (t.port,):
        if not port_free(p):
            raise RuntimeError("port %d is already in use (another benchmark? --port-offset)" % p)
    log("%s: starting (%s)" % (t.name, t.desc))
    t.start()
    sessions = []
    for _ in range(0 if getattr(t, "modern", False) else a.connections):
        sid = open_session(t.port, t.token)
        if sid:
            sessions.append(sid)
    t.stateless = not sessions
    t.nsessions = len(sessions)
    with tempfile.NamedTemporaryFile("w", prefix="bench-sessions-", delete=False) as sf:
        sf.write("\n".join(sessions) + "\n")
    t.sessions_file = sf.name
    if a.warmup > 0:
        run_wrk(t, a.warmup, a.connections, a.threads, t.sessions_file)


def _metric(text, name, labels=None):
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            if labels and labels not in line:
                continue
            total += float(line.rsplit(" ", 1)[1])
    return total


def audit_state(t):
    """(last audit_log id, tool calls the server finished, records dropped), once this target's
    workers hold no audit record that is not in PostgreSQL (queue and spool drained)."""
    url = os.environ.get("CSMCP_TEST_DATABASE_URL") or os.environ.get("CSMCP_DATABASE_URL")
    deadline = time.monotonic() + 120
    while True:
        st, _, body = t.lib.http_request(t.port + 1, "GET", "/metrics", timeout=5)
        m = body.decode()
        if (_metric(m, "csmcp_audit_queue_depth") == 0 and
                _metric(m, "csmcp_audit_spool_records") == 0) or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    time.sleep(0.6)  # the workers' heartbeats carry their last counters to the supervisor
    m = t.lib.http_request(t.port + 1, "GET", "/metrics", timeout=5)[2].decode()
    out = subprocess.run(["psql", "-X", url, "-Atc", "SELECT coalesce(max(id), 0) FROM audit_log"],
                         capture_output=True, text=True, timeout=60)
    t.spool_stats = (_metric(m, "csmcp_audit_spool_sync_seconds_count"),
                     _metric(m, "csmcp_audit_spool_sync_seconds_sum"))
    return (int(out.stdout.strip() or 0),
            _metric(m, "csmcp_mcp_tool_calls_total", 'tool="test_simple_text"'),
            _metric(m, "csmcp_audit_dropped_total"))


def audit_count(t, id0, id1):
    """Audit rows of test_simple_text calls by this target's workers with id in (id0, id1]."""
    url = os.environ.get("CSMCP_TEST_DATABASE_URL") or os.environ.get("CSMCP_DATABASE_URL")
    pats = ",".join("'%d-%%'" % p for p in t.worker_pids())
    out = subprocess.run(["psql", "-X", url, "-Atc",
                          "SELECT count(*) FROM audit_log WHERE id > %d AND id <= %d AND "
                          "tool = 'test_simple_text' AND writer LIKE ANY (ARRAY[%s])" % (
                              id0, id1, pats)], capture_output=True, text=True, timeout=120)
    return int(out.stdout.strip() or -1)


def measure(t, a, perf_out=None):
    """One measured wrk run against a prepared target; perf_out: record a perf profile of the
    target's worker processes during the run into that file."""
    audited = isinstance(t, CsmcpdTarget) and t.audit and a.audit_check
    if audited:
        id0, calls0, dropped0 = audit_state(t)
        syncs0 = t.spool_stats
    pids, helpers, dbs = t.pids(), t.helper_pids(), t.db_pids()
    cpu0, hcpu0, dcpu0 = cpu_seconds(pids), cpu_seconds(helpers), cpu_seconds(dbs)
    perf = None
    if perf_out:
        perf = subprocess.Popen(["perf", "record", "-q", "-F", "499", "-g", "-o", perf_out, "-p",
                                 ",".join(str(p) for p in t.worker_pids()), "--", "sleep",
                                 str(a.duration)], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
    res = run_wrk(t, a.duration, a.connections, a.threads, t.sessions_file)
    if perf:
        perf.wait(30)
        log("perf profile of %s written to %s (perf report -i %s --no-children)" % (
            t.name, perf_out, perf_out))
    res["server_cpu_s"] = cpu_seconds(pids) - cpu0
    res["helper_cpu_s"] = cpu_seconds(helpers) - hcpu0
    res["db_cpu_s"] = cpu_seconds(dbs) - dcpu0
    res["rss_kib"] = [rss_kib(p) for p in t.worker_pids()]
    res["sessions"] = t.nsessions
    res["stateless"] = t.stateless
    res["name"], res["desc"] = t.name, t.desc
    secs = res["duration_us"] / 1e6
    res["rps"] = res["requests"] / secs if secs > 0 else 0.0
    # Requests per CPU-second of the server (for csmcpd plus Redis and PostgreSQL): robust when
    # the machine is shared and the server does not get its full 2 cores.
    cpu = res["server_cpu_s"] + res["helper_cpu_s"] + res["db_cpu_s"]
    res["req_per_cpu_s"] = res["requests"] / cpu if cpu > 0 else 0.0
    res["errors"] = (res["err_connect"] + res["err_read"] + res["err_write"] +
                     res["err_timeout"] + res["bad_status"] + res["bad_body"])
    if audited:
        # issue 26: every acknowledged call has its record. The server's count of finished
        # calls must equal the records; wrk's count of answers read is lower by the requests
        # in flight when wrk stopped (answered and recorded, but no longer read).
        id1, calls1, dropped1 = audit_state(t)
        res["audit_records"] = audit_count(t, id0, id1)
        res["server_tool_calls"] = int(calls1 - calls0)
        res["acknowledged"] = res["requests"] - res["bad_status"] - res["bad_body"]
        res["audit_dropped"] = int(dropped1 - dropped0)
        res["audit_dropped_total"] = int(dropped1)
        n = t.spool_stats[0] - syncs0[0]
        res["spool_syncs"] = int(n)
        res["spool_sync_ms"] = 1000 * (t.spool_stats[1] - syncs0[1]) / n if n else 0.0
        res["records_per_sync"] = res["audit_records"] / n if n else 0.0
        log("%s audit: %d records for %d tool calls finished by the server (%d answers read by "
            "wrk), csmcp_audit_dropped_total +%d (now %d); spool: %d group commits, mean write + "
            "fdatasync %.2f ms, %.1f records each" % (
                t.name, res["audit_records"], res["server_tool_calls"], res["acknowledged"],
                res["audit_dropped"], res["audit_dropped_total"], res["spool_syncs"],
                res["spool_sync_ms"], res["records_per_sync"]))
        if (res["audit_records"] != res["server_tool_calls"] or res["audit_dropped"] or
                res["acknowledged"] > res["audit_records"]):
            res["audit_mismatch"] = True
    return res


def fmt_ms(us):
    return "%.2f" % (us / 1000.0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--targets", default="csmcpd,csmcpd-auth,sdk-stateful,sdk-stateless")
    ap.add_argument("--duration", type=int, default=5, help="seconds per measured round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--workers", type=int, default=4, help="csmcpd workers")
    ap.add_argument("--node", default=os.environ.get("BENCH_NODE", "node"))
    ap.add_argument("--json", help="also write the results to this file")
    ap.add_argument("--min-ratio", type=float, default=0.0)
    ap.add_argument("--perf", help="record a perf profile of csmcpd's workers in round 1 here")
    ap.add_argument("--perf-target", default="csmcpd", help="the target --perf profiles")
    ap.add_argument("--port-offset", type=int, default=0,
                    help="added to every target's port (run beside another benchmark)")
    ap.add_argument("--no-audit-check", dest="audit_check", action="store_false",
                    help="skip counting audit records against the calls of each audited round")
    ap.add_argument("--settle", type=float, default=3.0,
                    help="seconds of pause after each measured round (default 3)")
    a = ap.parse_args()
    if not 1 <= a.duration <= 60 or not 0 <= a.warmup <= 10 or not 1 <= a.rounds <= 9 or \
            not 0 <= a.settle <= 30:
        ap.error("--duration must be 1..60 s, --warmup 0..10 s, --rounds 1..9, --settle 0..30 s")
    if not 1 <= a.connections <= 1024 or not 1 <= a.threads <= a.connections:
        ap.error("--connections must be 1..1024 and --threads 1..connections")
    if shutil.which("wrk") is None:
        print("wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 2
    o = a.port_offset
    makers = {
        "csmcpd": lambda: CsmcpdTarget("csmcpd", 19510 + o, a.workers, False),
        "csmcpd-auth": lambda: CsmcpdTarget("csmcpd-auth", 19520 + o, a.workers, True),
        # The SDK server has neither auth nor a rate limiter: the like-for-like configuration.
        "csmcpd-nolimit": lambda: CsmcpdTarget("csmcpd-nolimit", 19530 + o, a.workers, False, False),
        # ... and without the audit trail either (the SDK server keeps none): the same features
        "csmcpd-bare": lambda: CsmcpdTarget("csmcpd-bare", 19540 + o, a.workers, False, False, False),
        "csmcpd-modern": lambda: CsmcpdTarget("csmcpd-modern", 19550 + o, a.workers, False,
                                              modern=True),
        "csmcpd-auth-modern": lambda: CsmcpdTarget("csmcpd-auth-modern", 19560 + o, a.workers, True,
                                                   modern=True),
        # issue 26: what durability costs - csmcpd-auth answering only after the PostgreSQL
        # commit (no local spool), and answering at once (drop: records may be lost)
        "csmcpd-auth-commit": lambda: CsmcpdTarget(
            "csmcpd-auth-commit", 19570 + o, a.workers, True, audit_conf={"spool_dir": ""},
            audit_desc=" (refuse, no spool: answered after the commit)"),
        "csmcpd-auth-drop": lambda: CsmcpdTarget(
            "csmcpd-auth-drop", 19580 + o, a.workers, True, audit_conf={"on_failure": "drop"},
            audit_desc=" (on_failure = drop: answered before the record is durable)"),
        "sdk-stateful": lambda: SdkTarget("sdk-stateful", "stateful", 19600 + o, a.node),
        "sdk-stateless": lambda: SdkTarget("sdk-stateless", "stateless", 19601 + o, a.node),
    }
    names = [n.strip() for n in a.targets.split(",") if n.strip()]
    for n in names:
        if n not in makers:
            ap.error("unknown target %s" % n)
    # All targets run side by side (idle while another is measured); the measured runs are
    # interleaved in rounds and each target reports its median round, so a burst of load from
    # other processes on this shared machine does not decide the comparison.
    targets, failed = [], []
    try:
        for n in names:
            t = makers[n]()
            try:
                prepare_target(t, a)
                targets.append(t)
            except Exception as e:  # a target that cannot run is reported, the others run
                log("%s: FAILED: %s" % (n, e))
                failed.append(n)
                t.stop()
                if getattr(t, "sessions_file", None):
                    os.unlink(t.sessions_file)
        rounds = {t.name: [] for t in targets}
        for i in range(a.rounds):
            for t in targets:
                r = measure(t, a, a.perf if (i == 0 and t.name == a.perf_target) else None)
                if a.settle and (i + 1 < a.rounds or t is not targets[-1]):
                    # background work of this round (csmcpd's audit batches still being
                    # committed by PostgreSQL) must not run into the next target's round
                    time.sleep(a.settle)
                log("round %d %-14s %8.0f req/s  p99 %s ms  errors %d" % (
                    i + 1, t.name, r["rps"], fmt_ms(r["p99_us"]), r["errors"]))
                rounds[t.name].append(r)
    finally:
        for t in targets:
            t.stop()
            if getattr(t, "sessions_file", None):
                os.unlink(t.sessions_file)
    results = []
    for t in targets:
        rs = sorted(rounds[t.name], key=lambda r: r["rps"])
        if not rs:
            continue
        med = dict(rs[len(rs) // 2])
        med["rounds_rps"] = [round(r["rps"]) for r in rounds[t.name]]
        med["errors_all_rounds"] = sum(r["errors"] for r in rs)
        med["audit_mismatch_rounds"] = sum(1 for r in rs if r.get("audit_mismatch"))
        results.append(med)
    if not results:
        return 2
    print("\ntools/call test_simple_text, %d connections, %d wrk threads, median of %d "
          "interleaved rounds of %d s (after %d s warm-up), 127.0.0.1, %d CPUs, load average "
          "%.1f" % (a.connections, a.threads, a.rounds, a.duration, a.warmup, os.cpu_count(),
                    os.getloadavg()[0]))
    print("%-14s %9s %7s %7s %8s %6s %8s %6s %6s %8s %9s %s" % (
        "target", "req/s", "p50 ms", "p99 ms", "p99.9 ms", "errors", "srv CPU%", "redis%",
        "PG%", "wrk CPU%", "req/CPU-s", "RSS/worker MiB"))
    for r in results:
        secs = r["duration_us"] / 1e6
        mine = r["name"].startswith("csmcpd")
        print("%-14s %9.0f %7s %7s %8s %6d %8.0f %6s %6s %8.0f %9.0f %s" % (
            r["name"], r["rps"], fmt_ms(r["p50_us"]), fmt_ms(r["p99_us"]), fmt_ms(r["p999_us"]),
            r["errors"], 100 * r["server_cpu_s"] / secs,
            "%.0f" % (100 * r["helper_cpu_s"] / secs) if mine else "-",
            "%.0f" % (100 * r["db_cpu_s"] / secs) if mine else "-",
            100 * r["wrk_cpu_s"] / secs, r["req_per_cpu_s"],
            ",".join("%.1f" % (k / 1024) for k in r["rss_kib"])))
        print("  rounds req/s: %s" % " ".join(str(x) for x in r["rounds_rps"]))
        if r["errors"]:
            print("  errors: connect %d read %d write %d timeout %d non-200 %d bad-body %d" % (
                r["err_connect"], r["err_read"], r["err_write"], r["err_timeout"],
                r["bad_status"], r["bad_body"]))
            if r.get("sample"):
                print("  first bad response: %s" % r["sample"][:200])
    by = {r["name"]: r for r in results}
    sdk = [r for r in results if r["name"].startswith("sdk-")]
    ratio = None
    if sdk:
        best = max(sdk, key=lambda r: r["rps"])
        best_eff = max(sdk, key=lambda r: r["req_per_cpu_s"])
        print("\nratios to the best SDK configuration (throughput: %s %.0f req/s; per CPU-second:"
              " %s %.0f); req/CPU-s counts the server's processes, for csmcpd also Redis and the "
              "PostgreSQL that stores its audit trail:" % (best["name"], best["rps"],
                                                           best_eff["name"],
                                                           best_eff["req_per_cpu_s"]))
        for r in results:
            if not r["name"].startswith("csmcpd"):
                continue
            x = r["rps"] / best["rps"] if best["rps"] else float("inf")
            y = (r["req_per_cpu_s"] / best_eff["req_per_cpu_s"] if best_eff["req_per_cpu_s"]
                 else float("inf"))
            print("  %-14s %5.1fx throughput  %5.1fx per CPU-second  p99 %s ms vs %s ms  (%s)" % (
                r["name"], x, y, fmt_ms(r["p99_us"]), fmt_ms(best["p99_us"]), r["desc"]))
            if ratio is None or r["name"] == "csmcpd":
                ratio = x
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"args": vars(a), "results": results, "ratio": ratio,
                       "failed": failed}, f, indent=1)
    for r in results:
        if "audit_records" in r:
            print("  audit %-14s records %d = tool calls finished %d (wrk read %d answers), "
                  "dropped +%d%s" % (r["name"], r["audit_records"], r["server_tool_calls"],
                                     r["acknowledged"], r["audit_dropped"],
                                     "" if not r["audit_mismatch_rounds"] else
                                     "  MISMATCH in %d round(s)" % r["audit_mismatch_rounds"]))
    bad = failed or any(r["errors_all_rounds"] or r["audit_mismatch_rounds"] for r in results)
    if ratio is not None and ratio < a.min_ratio:
        print("ratio %.1f below --min-ratio %.1f" % (ratio, a.min_ratio))
        bad = True
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
