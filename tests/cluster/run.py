#!/usr/bin/python3
"""tests/cluster/run.py - csmcp scale-out topology in network namespaces (issue 20).

Builds, on this machine (root; `ip netns` + veth pairs + one bridge, all inside namespaces of
our own, addresses 10.77.0.0/24 exist only there):

    <p>-net  bridge br0 (every veth's other end)
    <p>-lb   10.77.0.10  HAProxy (docs/operations/scale-out.md config, `haproxy -c` checked)
                         + every client (conformance suites, SDK, wrk) on 127.0.0.1:8080
    <p>-h1..h3 10.77.0.11-13  one csmcpd each (own config, var dir, 2 workers), :8080
    <p>-db   10.77.0.20  PostgreSQL primary :5432 + streaming replica :5433 (pg_basebackup),
                         Redis primary :6379 + replica :6380 + 3 redis-sentinel :26379-26381

The primary's data is a pg_basebackup of the migrated and seeded test cluster
(CSMCP_PG_ADMIN_URL, as `scripts/dev test` provides it), so nothing is seeded here.

Checks, all through HAProxy (round-robin, no stickiness: consecutive requests of one session land
on different hosts):
  1. conformance 0.1.16 `--suite all` and 0.2.0-alpha.12 `--requirements 2025-11-25`;
  2. the TypeScript SDK data workflow (tests/integration/data_sdk_workflow.mjs);
  3. read replica: replica_ok analytics served by the replica; replay paused + a write on the
     primary -> the tool answers the fresh value from the primary and the hosts count it as
     "lagging"; write through one host, read through the next sees it;
  4. load: --sessions sessions running tests/load/mix.lua through wrk for --duration seconds
     while host 1 is SIGKILLed (whole process group) and restarted, host 2 reloaded (SIGHUP)
     twice, and the Redis primary SIGKILLed (Sentinel fails over; it is restarted later and
     rejoins as a replica). Prints requests, errors by kind and by event window, p50/p99,
     session continuity after each event (a sample of sessions pinged through HAProxy).
Every loop is bounded; everything is torn down at exit (also on errors and signals; run.sh
adds a trap that deletes the namespaces even if this process is SIGKILLed).

Exit status 0 when every check passed, 1 otherwise, 2 on set-up failure.
"""
import argparse
import ctypes
import http.client
import importlib.util
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BUILD = os.environ.get("CSMCP_BUILD_DIR", os.path.join(ROOT, "build"))
CSMCPD = os.path.join(BUILD, "supervisor", "csmcpd")
CSMCPCTL = os.path.join(BUILD, "supervisor", "csmcpctl")
WORKER = os.path.join(BUILD, "worker", "csmcp-worker")
DOC = os.path.join(ROOT, "docs", "operations", "scale-out.md")
NET = "10.77.0"
ADDR = {"lb": NET + ".10", "h1": NET + ".11", "h2": NET + ".12", "h3": NET + ".13",
        "db": NET + ".20"}
HOSTS = ("h1", "h2", "h3")
MASTER = "csmcp"
LB_URL = "http://127.0.0.1:8080/mcp"

T0 = time.monotonic()


def log(msg):
    print("[%6.1fs] %s" % (time.monotonic() - T0, msg), flush=True)


def pg_bindir():
    cands = sorted(d for d in os.listdir("/usr/lib/postgresql"))
    return "/usr/lib/postgresql/%s/bin" % cands[-1]


PGBIN = pg_bindir()


def as_postgres(argv):
    return ["runuser", "-u", "postgres", "--"] + argv if os.geteuid() == 0 else argv


class Setup(Exception):
    pass


# ------------------------------------------------------------------------- namespaces

class Netns:
    def __init__(self, prefix):
        self.p = prefix
        self.names = []

    def ns(self, short):
        return "%s-%s" % (self.p, short)

    def ip(self, *args, ns=None, check=True):
        cmd = ["ip"] + (["-n", ns] if ns else []) + list(args)
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        if check and r.returncode != 0:
            raise Setup("%s: %s" % (" ".join(cmd), r.stderr.strip()))
        return r

    def build(self):
        net = self.ns("net")
        self.ip("netns", "add", net)
        self.names.append(net)
        self.ip("link", "add", "br0", "type", "bridge", ns=net)
        self.ip("link", "set", "br0", "up", ns=net)
        self.ip("link", "set", "lo", "up", ns=net)
        for short, addr in ADDR.items():
            n = self.ns(short)
            self.ip("netns", "add", n)
            self.names.append(n)
            peer = "v%s" % short   # the bridge side, inside <p>-net
            self.ip("link", "add", "eth0", "netns", n, "type", "veth", "peer", "name", peer,
                    "netns", net)
            self.ip("link", "set", peer, "master", "br0", ns=net)
            self.ip("link", "set", peer, "up", ns=net)
            self.ip("addr", "add", addr + "/24", "dev", "eth0", ns=n)
            self.ip("link", "set", "eth0", "up", ns=n)
            self.ip("link", "set", "lo", "up", ns=n)

    def pids(self):
        out = []
        for n in self.names:
            r = self.ip("netns", "pids", n, check=False)
            out += [int(x) for x in r.stdout.split()]
        # This process itself lives in <p>-lb (enter_netns): never signal ourselves.
        return [p for p in out if p != os.getpid()]

    def destroy(self):
        # Every process still in one of our namespaces is one we started.
        for sig in (signal.SIGTERM, signal.SIGKILL):
            pids = self.pids()
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + 5
            while self.pids() and time.monotonic() < deadline:
                time.sleep(0.1)
        for n in reversed(self.names):
            self.ip("netns", "del", n, check=False)
        self.names = []


def enter_netns(name):
    """Moves the calling thread (the main thread, before any other is started) into the network
    namespace: every socket, thread and child created afterwards lives there."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    fd = os.open("/run/netns/%s" % name, os.O_RDONLY)
    try:
        if libc.setns(fd, 0x40000000) != 0:   # CLONE_NEWNET
            raise Setup("setns(%s): %s" % (name, os.strerror(ctypes.get_errno())))
    finally:
        os.close(fd)


# ------------------------------------------------------------------------- processes

class Procs:
    def __init__(self, logdir):
        self.logdir = logdir
        self.all = []

    def start(self, ns, argv, name, env=None, user_pg=False):
        logf = open(os.path.join(self.logdir, name + ".log"), "ab")
        cmd = ["ip", "netns", "exec", ns] + (as_postgres(argv) if user_pg else argv)
        p = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, env=env,
                             start_new_session=True)
        logf.close()
        self.all.append(p)
        return p

    def stop_all(self):
        # Test servers only: SIGKILL (a graceful csmcpd drain would add drain_timeout).
        for p in self.all:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + 10
        for p in self.all:
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait(5)


def run(argv, timeout=120, check=True, env=None, cwd=None):
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env, cwd=cwd)
    if check and r.returncode != 0:
        raise Setup("%s failed (%d): %s %s" % (" ".join(argv[:6]), r.returncode,
                                               r.stdout[-2000:], r.stderr[-2000:]))
    return r


def wait_until(cond, timeout, what, interval=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if cond():
                return
        except (OSError, http.client.HTTPException, subprocess.SubprocessError):
            pass
        time.sleep(interval)
    raise Setup("timed out after %ss waiting for %s" % (timeout, what))


def rcli(port, *args, host=ADDR["db"]):
    r = subprocess.run(["redis-cli", "-h", host, "-p", str(port)] + [str(a) for a in args],
                       capture_output=True, text=True, timeout=5)
    return r.stdout.strip()


def psql(url, sql, check=True):
    r = subprocess.run([os.path.join(PGBIN, "psql"), "-X", "-qAt", "-v", "ON_ERROR_STOP=1",
                        "-d", url], input=sql, capture_output=True, text=True, timeout=60)
    if check and r.returncode != 0:
        raise Setup("psql %s: %s" % (url, r.stderr.strip()))
    return r.stdout.strip()


def hreq(method, path, body=None, headers=None, timeout=10, port=8080, host="127.0.0.1"):
    c = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        c.request(method, path, body=json.dumps(body) if isinstance(body, dict) else body,
                  headers=headers or {})
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        c.close()


def mcp_body(headers, data):
    if headers.get("content-type", "").startswith("text/event-stream"):
        for line in data.decode().splitlines():
            if line.startswith("data:"):
                return json.loads(line[5:])
        return None
    return json.loads(data) if data else None


HDRS = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}


def initialize():
    st, h, d = hreq("POST", "/mcp", {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "cluster-test", "version": "1"}}}, HDRS)
    if st != 200 or "mcp-session-id" not in h:
        raise Setup("initialize through HAProxy: %s %s" % (st, d[:200]))
    sid = h["mcp-session-id"]
    hreq("POST", "/mcp", {"jsonrpc": "2.0", "method": "notifications/initialized"},
         dict(HDRS, **{"Mcp-Session-Id": sid, "MCP-Protocol-Version": "2025-11-25"}))
    return sid


def rpc(sid, method, params=None, timeout=10):
    st, h, d = hreq("POST", "/mcp", {"jsonrpc": "2.0", "id": 2, "method": method,
                                     "params": params or {}},
                    dict(HDRS, **{"Mcp-Session-Id": sid, "MCP-Protocol-Version": "2025-11-25"}),
                    timeout=timeout)
    return st, (mcp_body(h, d) if st == 200 else d)


def call_tool(sid, name, args):
    st, msg = rpc(sid, "tools/call", {"name": name, "arguments": args})
    if st != 200 or "result" not in msg:
        raise AssertionError("%s: %s %s" % (name, st, str(msg)[:300]))
    return msg["result"]


# ------------------------------------------------------------------------- the topology

class Cluster:
    def __init__(self, a):
        self.a = a
        self.dir = tempfile.mkdtemp(prefix="csmcp-cluster-")
        os.chmod(self.dir, 0o755)
        self.logdir = os.path.join(self.dir, "logs")
        os.makedirs(self.logdir)
        os.chmod(self.logdir, 0o1777)   # PostgreSQL (user postgres) writes its logs here too
        self.nets = Netns(os.environ.get("CSMCP_CLUSTER_PREFIX") or
                         "c%d" % (os.getpid() % 100000))
        self.procs = Procs(self.logdir)
        self.hosts = {}
        self.secret = os.urandom(32).hex()
        self.primary_url = "postgresql://csmcp@%s:5432/csmcp" % ADDR["db"]
        self.replica_url = "postgresql://csmcp@%s:5433/csmcp" % ADDR["db"]
        self.replica_admin = "postgresql://postgres@%s:5433/postgres" % ADDR["db"]

    # -- PostgreSQL
    def pg_dir(self, name):
        d = os.path.join(self.dir, name)
        os.makedirs(d)
        if os.geteuid() == 0:
            shutil.chown(d, "postgres", "postgres")
        os.chmod(d, 0o700)
        return d

    def pg_conf(self, data, port):
        with open(os.path.join(data, "postgresql.conf"), "a") as f:
            f.write("\n# tests/cluster\nlisten_addresses = '%s'\nport = %d\n"
                    "unix_socket_directories = '%s'\nshared_buffers = 64MB\nfsync = off\n"
                    "hot_standby = on\nwal_level = replica\nmax_wal_senders = 10\n"
                    "log_min_messages = warning\n" % (ADDR["db"], port, data))
        with open(os.path.join(data, "pg_hba.conf"), "a") as f:
            f.write("host all all %s.0/24 trust\nhost replication all %s.0/24 trust\n"
                    % (NET, NET))
        for stale in ("postmaster.pid", "postmaster.opts"):
            try:
                os.unlink(os.path.join(data, stale))
            except FileNotFoundError:
                pass

    def pg_start(self, data, port, name):
        r = run(["ip", "netns", "exec", self.nets.ns("db")] + as_postgres(
            [os.path.join(PGBIN, "pg_ctl"), "-D", data, "-l",
             os.path.join(self.logdir, name + ".log"), "-w", "-t", "120", "start"]),
            timeout=150, check=False)
        if r.returncode != 0:
            raise Setup("%s did not start: %s" % (name, r.stdout + r.stderr))

    def postgres(self, source_admin_url):
        t = time.monotonic()
        primary = os.path.join(self.pg_dir("pg-primary"), "data")
        run(as_postgres([os.path.join(PGBIN, "pg_basebackup"), "-d", source_admin_url, "-D",
                         primary, "-X", "stream", "-c", "fast"]), timeout=600)
        self.pg_conf(primary, 5432)
        self.primary_data = primary
        return time.monotonic() - t

    def postgres_start(self):
        self.pg_start(self.primary_data, 5432, "pg-primary")
        replica = os.path.join(self.pg_dir("pg-replica"), "data")
        run(["ip", "netns", "exec", self.nets.ns("db")] + as_postgres(
            [os.path.join(PGBIN, "pg_basebackup"), "-h", ADDR["db"], "-p", "5432", "-U",
             "postgres", "-D", replica, "-R", "-X", "stream", "-c", "fast"]), timeout=600)
        with open(os.path.join(replica, "postgresql.conf"), "a") as f:
            f.write("\nport = 5433\nunix_socket_directories = '%s'\n" % replica)
        self.replica_data = replica
        self.pg_start(replica, 5433, "pg-replica")

    # -- Redis
    def redis(self):
        db = self.nets.ns("db")
        self.redis_dir = os.path.join(self.dir, "redis")
        os.makedirs(self.redis_dir)
        self.redis_procs = {}
        for port, extra in ((6379, []), (6380, ["--replicaof", ADDR["db"], "6379"])):
            self.redis_start(port, extra)
        wait_until(lambda: "master_link_status:up" in rcli(6380, "INFO", "replication"), 30,
                   "the Redis replica in sync")
        for i, port in enumerate((26379, 26380, 26381)):
            conf = os.path.join(self.redis_dir, "sentinel-%d.conf" % port)
            with open(conf, "w") as f:
                f.write(sentinel_conf(port, self.redis_dir))
            self.procs.start(db, ["redis-sentinel", conf], "sentinel-%d" % port)
        wait_until(lambda: all(rcli(p, "SENTINEL", "ckquorum", MASTER).startswith("OK 3")
                               for p in (26379, 26380, 26381)), 40, "Sentinel quorum (3)")

    def redis_start(self, port, extra=()):
        d = os.path.join(self.redis_dir, str(port))
        os.makedirs(d, exist_ok=True)
        self.redis_procs[port] = self.procs.start(
            self.nets.ns("db"), ["redis-server", "--bind", ADDR["db"], "--port", str(port),
                                 "--protected-mode", "no", "--dir", d, "--save", "",
                                 "--appendonly", "no"] + list(extra), "redis-%d" % port)
        wait_until(lambda: rcli(port, "PING") == "PONG", 20, "redis :%d" % port)

    # -- csmcpd hosts
    def host_conf(self, h):
        d = os.path.join(self.dir, h)
        os.makedirs(d, exist_ok=True)
        path = os.path.join(d, "csmcp.conf")
        with open(path, "w") as f:
            f.write(host_conf(h, d, self.a.workers, self.primary_url, self.replica_url))
        return path

    def host_start(self, h):
        env = {k: v for k, v in os.environ.items() if not k.startswith("CSMCP_")}
        env["CSMCP_SESSION_SECRET"] = self.secret   # one key for every host's session ids
        p = self.procs.start(self.nets.ns(h), [CSMCPD, "-c", self.hosts[h]["conf"]], h, env=env)
        self.hosts[h]["proc"] = p
        return p

    def host_ready(self, h):
        r = subprocess.run(["ip", "netns", "exec", self.nets.ns(h), "curl", "-s", "-o",
                            "/dev/null", "-w", "%{http_code}", "-m", "2",
                            "http://127.0.0.1:9090/ready"], capture_output=True, text=True,
                           timeout=10)
        return r.stdout.strip() == "200"

    def host_metrics(self, h):
        r = subprocess.run(["ip", "netns", "exec", self.nets.ns(h), "curl", "-s", "-m", "5",
                            "http://127.0.0.1:9090/metrics"], capture_output=True, text=True,
                           timeout=10)
        return r.stdout

    def metric(self, name, label):
        total = 0.0
        for h in HOSTS:
            for m in re.finditer(r"^%s\{([^}]*)\} (\S+)$" % re.escape(name), self.host_metrics(h),
                                 re.M):
                if label in m.group(1):
                    total += float(m.group(2))
        return total

    def hosts_start(self):
        for h in HOSTS:
            self.hosts[h] = {"conf": self.host_conf(h)}
            r = run([CSMCPD, "-t", "-c", self.hosts[h]["conf"]], check=False)
            if r.returncode != 0:
                raise Setup("csmcpd -t %s: %s" % (h, r.stdout + r.stderr))
            self.host_start(h)
        for h in HOSTS:
            wait_until(lambda h=h: self.host_ready(h), 60, "host %s ready" % h, 0.3)

    # -- HAProxy
    def haproxy(self):
        cfg = os.path.join(self.dir, "haproxy.cfg")
        with open(cfg, "w") as f:
            f.write(doc_block("haproxy"))
        r = run(["haproxy", "-c", "-f", cfg], check=False)
        if r.returncode != 0:
            raise Setup("haproxy -c -f (the config of docs/operations/scale-out.md): %s"
                        % (r.stdout + r.stderr))
        self.haproxy_proc = self.procs.start(self.nets.ns("lb"), ["haproxy", "-db", "-f", cfg],
                                             "haproxy")
        return r.stdout.strip() or "Configuration file is valid"

    def teardown(self):
        self.procs.stop_all()
        for data in (getattr(self, "replica_data", None), getattr(self, "primary_data", None)):
            if data and os.path.exists(os.path.join(data, "postmaster.pid")):
                subprocess.run(as_postgres([os.path.join(PGBIN, "pg_ctl"), "-D", data, "-m",
                                            "immediate", "-w", "-t", "30", "stop"]),
                               capture_output=True, timeout=60)
        self.nets.destroy()
        if self.a.keep:
            print("kept (logs): %s" % self.dir)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)


def doc_block(kind):
    """The ```<kind> block of docs/operations/scale-out.md marked `<!-- cluster-test -->`: the
    test runs the documented configuration itself."""
    with open(DOC) as f:
        text = f.read()
    m = re.search(r"<!-- cluster-test: %s -->\s*```[a-z]*\n(.*?)```" % kind, text, re.S)
    if not m:
        raise Setup("docs/operations/scale-out.md has no <!-- cluster-test: %s --> block" % kind)
    return m.group(1)


def sentinel_conf(port, d):
    return doc_block("sentinel").replace("26379", str(port)).replace("/var/lib/redis", d)


def host_conf(h, d, workers, primary, replica):
    return """# tests/cluster host %(h)s
server: { listen = ["%(addr)s:8080"]; workers = %(w)d; worker_binary = "%(worker)s";
          drain_timeout = 10; heartbeat_ms = 500; };
admin: { listen = "127.0.0.1:9090"; };
control: { socket = "%(d)s/ctl.sock"; };
database: { url = "%(primary)s"; read_url = "%(replica)s"; pool_size = 4;
            max_replica_lag = 2; };
redis: { url = "redis://%(db)s:6379/0";
         sentinels = ["%(db)s:26379", "%(db)s:26380", "%(db)s:26381"];
         master_name = "%(master)s"; timeout_ms = 1000; };
auth: { required = false; };
ratelimit: { key_per_minute = 10000000; tool_per_minute = 10000000;
             write_per_minute = 10000000; };
mcp: { conformance_fixtures = true; page_size = 14; };
log: { level = "notice"; };
""" % {"h": h, "addr": ADDR[h], "w": workers, "worker": WORKER, "d": d, "primary": primary,
       "replica": replica, "db": ADDR["db"], "master": MASTER}


# ------------------------------------------------------------------------- checks

def client_module():
    spec = importlib.util.spec_from_file_location(
        "csmcp_client_run", os.path.join(ROOT, "tests", "client", "run.py"))
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    return m


def check_clients(results):
    cr = client_module()
    cr.npm_install()
    env = dict(os.environ, HOME=tempfile.mkdtemp(prefix="csmcp-home-"),
               PATH=os.path.dirname(cr.NODE) + os.pathsep + os.environ.get("PATH", ""))
    out_dir = tempfile.mkdtemp(prefix="csmcp-cluster-conf-")
    suites = [
        ("conformance 0.1.16 --suite all (via HAProxy)",
         [cr.NODE, cr.STABLE, "server", "--url", LB_URL, "--suite", "all", "-o",
          os.path.join(out_dir, "stable")]),
        ("conformance 0.2.0-alpha.12 --requirements 2025-11-25 (via HAProxy)",
         [cr.NODE, cr.ALPHA, "server", "--url", LB_URL, "--requirements", "2025-11-25", "-o",
          os.path.join(out_dir, "alpha")]),
        ("TypeScript SDK data workflow (via HAProxy)",
         [cr.NODE, os.path.join(ROOT, "tests", "integration", "data_sdk_workflow.mjs"), LB_URL,
          os.path.join(ROOT, "tests", "client", "node_modules", "@modelcontextprotocol", "sdk",
                       "dist", "esm")]),
    ]
    for name, cmd in suites:
        t = time.monotonic()
        log("$ " + " ".join(os.path.basename(c) if c.startswith("/") else c for c in cmd))
        p = subprocess.run(cmd, cwd=os.path.join(ROOT, "tests", "client"), capture_output=True,
                           text=True, timeout=600, env=env)
        out = p.stdout + p.stderr
        ok_n, bad_n = cr.totals(out)
        ns = re.search(r"Not scored for [^:]*: (\d+) scenario\(s\) run, (\d+) failing", out)
        if ns and int(ns.group(2)) > 0:
            bad_n += int(ns.group(2))
        if p.returncode != 0 and bad_n == 0:
            bad_n = 1
        results.append((name, ok_n, bad_n, "%.0f s" % (time.monotonic() - t)))
        if bad_n:
            print(out[-5000:])
    shutil.rmtree(out_dir, ignore_errors=True)


def check_replica(c, results):
    t = time.monotonic()
    problems = []
    sid = initialize()
    # 1. replica_ok analytics run on the replica.
    before = c.metric("csmcp_db_replica_reads_total", 'result="replica"')
    for _ in range(6):
        r = call_tool(sid, "track_cs_metrics", {"metric_type": "nps"})
        if r.get("isError"):
            problems.append("track_cs_metrics: %s" % r["content"][0]["text"][:200])
    time.sleep(1.2)   # one heartbeat of every worker
    served = c.metric("csmcp_db_replica_reads_total", 'result="replica"') - before
    if served < 1:
        problems.append("no replica_ok call was served by the replica")
    # 2. replay paused; a write on the primary; the tool answers the fresh value.
    psql(c.replica_admin, "SELECT pg_wal_replay_pause()")
    cid = "cluster_lag_%d" % os.getpid()
    psql(c.primary_url, "INSERT INTO accounts (client_id, client_name, company_name, tier, "
         "created_at) VALUES ('%s', 'Cluster lag', 'C', 'enterprise', now() - interval '400 days')"
         " ON CONFLICT DO NOTHING;" % cid + "".join(
             "INSERT INTO csat_responses (response_id, client_id, survey_type, score, responded_at)"
             " VALUES ('%s-%d', '%s', 'csat', %d, now() - interval '3 days') ON CONFLICT DO NOTHING;"
             % (cid, i, cid, s) for i, s in enumerate([5, 4, 4, 5, 4])))
    on_replica = psql(c.replica_admin.replace("/postgres", "/csmcp"),
                      "SELECT count(*) FROM accounts WHERE client_id = '%s'" % cid)
    time.sleep(3.5)   # past max_replica_lag (2 s) and one lag check
    lag_before = c.metric("csmcp_db_replica_reads_total", 'result="lagging"')
    for _ in range(3):   # three calls: round-robin puts them on three hosts
        r = call_tool(sid, "track_cs_metrics", {"metric_type": "csat", "client_id": cid})
        v = None if r.get("isError") else r["structuredContent"]["current_metrics"]["value"]
        if v != 4.4:
            problems.append("lagging replica: expected the primary's 4.4, got %s" %
                            (r["content"][0]["text"][:200] if r.get("isError") else v))
    time.sleep(1.2)
    lagging = c.metric("csmcp_db_replica_reads_total", 'result="lagging"') - lag_before
    if lagging < 3:
        problems.append("csmcp_db_replica_reads_total{result=\"lagging\"} grew by %d, want 3"
                        % lagging)
    # 3. read-your-writes through another host while the replica is paused.
    out = call_tool(sid, "register_client", {"client_name": "Cluster RYW %d" % os.getpid(),
                                             "company_name": "RYW"})
    new_id = (out.get("structuredContent") or {}).get("client_id")
    for _ in range(3):   # the next three requests land on the three hosts in turn
        r = call_tool(sid, "get_client_overview", {"client_id": new_id})
        if r.get("isError"):
            problems.append("read-your-writes: %s" % r["content"][0]["text"][:200])
    psql(c.replica_admin, "SELECT pg_wal_replay_resume()")
    results.append(("read replica: %d replica reads, paused replica (account rows there: %s) "
                    "-> %d lagging fallbacks with fresh values, write+read on other hosts"
                    % (served, on_replica, lagging), 0 if problems else 1, len(problems),
                    "%.0f s" % (time.monotonic() - t)))
    for p in problems:
        print("  replica check: " + p)


def open_sessions(n, nthreads=8):
    out, errors = [], []
    lock = threading.Lock()

    def worker(count):
        mine = []
        for _ in range(count):
            try:
                mine.append(initialize())
            except (Setup, OSError, http.client.HTTPException) as e:
                with lock:
                    errors.append(str(e))
        with lock:
            out.extend(mine)
    per = [n // nthreads + (1 if i < n % nthreads else 0) for i in range(nthreads)]
    ts = [threading.Thread(target=worker, args=(k,)) for k in per]
    for t in ts:
        t.start()
    for t in ts:
        t.join(300)
    if errors:
        raise Setup("opening %d sessions: %d failed, e.g. %s" % (n, len(errors), errors[0]))
    return out


def continuity(sessions, nthreads=8):
    """Pings every session in sessions through HAProxy: (valid, lost, other)."""
    res = {"ok": 0, "lost": 0, "other": 0}
    lock = threading.Lock()
    chunks = [sessions[i::nthreads] for i in range(nthreads)]

    def worker(chunk):
        for sid in chunk:
            k = "other"
            for _ in range(5):   # 503 / no answer is "unavailable now", not a verdict
                try:
                    st, _ = rpc(sid, "ping", timeout=10)
                    k = "ok" if st == 200 else "lost" if st == 404 else "other"
                except (OSError, http.client.HTTPException, ValueError):
                    k = "other"
                if k != "other":
                    break
                time.sleep(0.3)
            with lock:
                res[k] += 1
    ts = [threading.Thread(target=worker, args=(ch,)) for ch in chunks]
    for t in ts:
        t.start()
    for t in ts:
        t.join(120)
    return res


def check_load(c, results, a):
    n, dur = a.sessions, a.duration
    t_open = time.monotonic()
    sessions = open_sessions(n)
    log("%d sessions opened through HAProxy in %.1f s" % (n, time.monotonic() - t_open))
    accounts = psql(c.primary_url, "SELECT client_id FROM accounts ORDER BY client_id "
                    "LIMIT 2000").split()
    sf = os.path.join(c.dir, "sessions.txt")
    af = os.path.join(c.dir, "accounts.txt")
    with open(sf, "w") as f:
        f.write("\n".join(sessions) + "\n")
    with open(af, "w") as f:
        f.write("\n".join(accounts) + "\n")
    sample = sessions[:: max(1, n // a.sample)][:a.sample]

    events = []    # (wall start, wall end, label, continuity)
    stop = threading.Event()
    start_wall = time.time()

    def at(frac):
        d = start_wall + frac * dur - time.time()
        if d > 0:
            stop.wait(d)
        return not stop.is_set()

    def settle_and_probe(label, t_ev, wait_ready=None):
        if wait_ready:
            try:
                wait_until(wait_ready, 30, label, 0.2)
            except Setup as e:
                log("  %s" % e)
        def served():   # a new session and a call through HAProxy work again
            sid = initialize()
            return rpc(sid, "ping", timeout=5)[0] == 200
        try:
            wait_until(served, 30, label + ": service through HAProxy", 0.1)
        except Setup as e:
            log("  %s" % e)
        t_ok = time.time()
        cont = continuity(sample)
        events.append((t_ev, t_ok, label, cont))
        log("  %s: recovered after %.1f s; sessions valid %d/%d" %
            (label, t_ok - t_ev, cont["ok"], len(sample)))

    def chaos():
        if a.no_chaos:
            return
        try:
            ev = set(a.events.split(","))
            if "kill" in ev and not at(0.12):
                return
            p = c.hosts["h1"]["proc"]
            if "kill" not in ev:
                p = None
            t = time.time()
            if p is not None:
                log("event: SIGKILL host h1 (csmcpd and its workers, pgid %d)" % p.pid)
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(10)
                settle_and_probe("h1 SIGKILLed", t)
                if not at(0.27):
                    return
                t = time.time()
                log("event: restart host h1")
                c.host_start("h1")
                settle_and_probe("h1 restarted", t, lambda: c.host_ready("h1"))
            for frac in (0.38, 0.50) if "reload" in ev else ():
                if not at(frac):
                    return
                t = time.time()
                log("event: SIGHUP host h2 (reload)")
                c.hosts["h2"]["proc"].send_signal(signal.SIGHUP)
                time.sleep(1.0)
                settle_and_probe("h2 reloaded", t, lambda: c.host_ready("h2"))
            if "redis" not in ev or not at(0.62):
                return
            t = time.time()
            log("event: SIGKILL the Redis primary (:6379)")
            c.redis_procs[6379].kill()
            c.redis_procs[6379].wait(10)

            def failed_over():
                return rcli(6380, "ROLE").splitlines()[:1] == ["master"] and \
                    all(c.host_ready(h) for h in HOSTS)
            settle_and_probe("Redis primary SIGKILLed (Sentinel failover)", t, failed_over)
            if not at(0.85):
                return
            log("event: old Redis primary restarted (Sentinel makes it a replica)")
            c.redis_start(6379)
        except Exception as e:   # noqa: BLE001 - reported, the load still ends on time
            log("chaos thread: %r" % e)
            events.append((time.time(), time.time(), "chaos failed: %r" % e,
                           {"ok": 0, "lost": 0, "other": 1}))

    env = dict(os.environ, BENCH_MIX=os.path.join(ROOT, "tests", "load", "mix.lua"),
               BENCH_SESSIONS=sf, BENCH_ACCOUNTS=af, BENCH_SEED="20",
               BENCH_THINK_MS=str(a.think_ms))
    conns = n
    threads = max(1, min(a.wrk_threads, conns))
    cmd = ["wrk", "-t%d" % threads, "-c%d" % conns, "-d%ds" % dur, "--timeout", "10s",
           "-s", os.path.join(HERE, "cluster_mix.lua"), "http://127.0.0.1:8080/mcp"]
    log("$ " + " ".join(cmd[:-3]) + " ... (think %d ms)" % a.think_ms)
    th = threading.Thread(target=chaos)
    wrk = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           env=env)
    th.start()
    try:
        out, _ = wrk.communicate(timeout=dur + 60)
    except subprocess.TimeoutExpired:
        wrk.kill()
        out, _ = wrk.communicate()
    stop.set()
    th.join(60)
    m = re.search(r"^RESULT (\{.*\})$", out, re.M)
    if not m:
        print(out[-3000:])
        results.append(("load: wrk produced no RESULT", 0, 1, ""))
        return
    r = json.loads(m.group(1))
    errs = []
    for blk in re.findall(r"^ERRLOG\n(.*?)ENDERRLOG$", out, re.M | re.S):
        for line in blk.splitlines():
            ts, kind, body = (line.split(" ", 2) + [""])[:3]
            errs.append((int(ts), kind, body))
    final = continuity(sessions)

    # Each error second belongs to an event window [event - 1 s, recovered + 2 s], else it
    # is unexplained (a failure the cluster should not have).
    def window(ts):   # the latest event that started before ts, if ts is inside its window
        for (t0, t1, label, _) in reversed(events):
            if t0 - 1 <= ts <= t1 + 2:
                return label
        return "outside any event window"
    by_kind, by_window = {}, {}
    samples = {}
    for ts, kind, body in errs:
        by_kind[kind] = by_kind.get(kind, 0) + 1
        w = window(ts)
        by_window[w] = by_window.get(w, 0) + 1
        key = (w, kind, re.sub(r'"id":\d+,', "", body)[:150])
        samples[key] = samples.get(key, 0) + 1
    sock = r["err_connect"] + r["err_read"] + r["err_write"] + r["err_timeout"]
    unexplained = by_window.get("outside any event window", 0)
    host_events_lost = sum(e[3]["lost"] + e[3]["other"] for e in events if "Redis" not in e[2])
    redis_lost = sum(e[3]["lost"] for e in events if "Redis" in e[2])

    print()
    print("cluster load: %d sessions through HAProxy (round-robin, no stickiness), %d s, "
          "3 hosts x %d workers, think %d ms" % (n, dur, a.workers, a.think_ms))
    rows = [
        ("requests", "%d (%.0f/s)" % (r["requests"], r["requests"] / (r["duration_us"] / 1e6))),
        ("latency p50 / p99 / p99.9 / max", "%.1f / %.1f / %.1f / %.1f ms" % (
            r["p50_us"] / 1e3, r["p99_us"] / 1e3, r["p999_us"] / 1e3, r["max_us"] / 1e3)),
        ("errors by kind", ", ".join("%s: %d" % kv for kv in sorted(by_kind.items())) or "none"),
        ("socket errors (connect/read/write/timeout)", "%d/%d/%d/%d" % (
            r["err_connect"], r["err_read"], r["err_write"], r["err_timeout"])),
    ]
    for w, k in sorted(by_window.items()):
        rows.append(("  errors in window: " + w, str(k)))
    for (t0, t1, label, cont) in events:
        tot = cont["ok"] + cont["lost"] + cont["other"]
        rows.append(("event +%.1fs %s" % (t0 - start_wall, label),
                     "recovered %.1f s; sessions valid %d/%d (%.1f %%), lost %d, unanswered %d"
                     % (t1 - t0, cont["ok"], tot, 100.0 * cont["ok"] / max(1, tot), cont["lost"],
                        cont["other"])))
    tot = sum(final.values())
    rows.append(("session continuity at the end (all %d)" % n,
                 "%d valid (%.2f %%), %d lost, %d unanswered" % (
                     final["ok"], 100.0 * final["ok"] / max(1, tot), final["lost"],
                     final["other"])))
    wid = max(len(k) for k, _ in rows)
    for k, v in rows:
        print("  %-*s  %s" % (wid, k, v))
    print("  error bodies (window, kind, start of body: count):")
    for (w, kind, body), k in sorted(samples.items(), key=lambda x: -x[1])[:12]:
        print("    %s | %s | %s: %d" % (w, kind, body, k))
    print()
    fails = []
    if unexplained:
        fails.append("%d errors outside the event windows" % unexplained)
    if sock and not any(e for e in events):
        fails.append("%d socket errors" % sock)
    if host_events_lost:
        fails.append("%d sessions invalid/unanswered after host kill/restart/reload" %
                     host_events_lost)
    if final["lost"] > max(0, redis_lost):
        fails.append("%d sessions lost by the end (%d in the Redis window)" %
                     (final["lost"], redis_lost))
    want = {"kill": 2, "reload": 2, "redis": 1}
    nwant = 0 if a.no_chaos else sum(want.get(e, 0) for e in set(a.events.split(",")))
    if len([e for e in events if not e[2].startswith("chaos failed")]) < nwant:
        fails.append("only %d of %d events ran" % (len(events), nwant))
    for f in fails:
        print("  FAIL: " + f)
    results.append(("load + chaos: %d requests, %d errors (%d outside event windows), "
                    "p99 %.0f ms, %d/%d sessions valid at the end" % (
                        r["requests"], len(errs) + sock, unexplained, r["p99_us"] / 1e3,
                        final["ok"], n), 0 if fails else 1, len(fails),
                    "%.0f s" % (time.monotonic() - t_open)))


# ------------------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sessions", type=int, default=200, help="load sessions (default 200)")
    ap.add_argument("--duration", type=int, default=30, help="load seconds (default 30, max 120)")
    ap.add_argument("--think-ms", type=int, default=500, help="mean think time per request")
    ap.add_argument("--workers", type=int, default=2, help="workers per host")
    ap.add_argument("--wrk-threads", type=int, default=2)
    ap.add_argument("--sample", type=int, default=100, help="sessions pinged after each event")
    ap.add_argument("--skip-clients", action="store_true",
                    help="skip the conformance suites and the SDK workflow (load only)")
    ap.add_argument("--keep", action="store_true", help="keep the logs directory")
    ap.add_argument("--no-chaos", action="store_true", help="load without the events (baseline)")
    ap.add_argument("--events", default="kill,reload,redis",
                    help="which events run: kill (h1 SIGKILL + restart), reload (h2 SIGHUP x2), "
                         "redis (primary SIGKILL)")
    a = ap.parse_args()
    if not 10 <= a.duration <= 120 or not 1 <= a.sessions <= 20000:
        ap.error("--duration 10..120, --sessions 1..20000 (bounded)")
    if os.geteuid() != 0:
        print("tests/cluster needs root (network namespaces)\n0 passed, 1 failed")
        return 2
    for b in ("ip", "haproxy", "redis-server", "redis-sentinel", "redis-cli", "wrk", "curl",
              CSMCPD, WORKER):
        if shutil.which(b) is None and not os.access(b, os.X_OK):
            print("missing: %s\n0 passed, 1 failed" % b)
            return 2
    admin = os.environ.get("CSMCP_PG_ADMIN_URL")
    if not admin:
        print("CSMCP_PG_ADMIN_URL is not set (a migrated + seeded test cluster: run through "
              "`scripts/dev test`)\n0 passed, 1 failed")
        return 2
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    c = Cluster(a)
    results, setup_times = [], []
    code = 0

    def on_signal(sig, frame):
        raise KeyboardInterrupt()
    signal.signal(signal.SIGTERM, on_signal)
    try:
        t = time.monotonic()
        c.nets.build()
        setup_times.append(("namespaces + veth + bridge", time.monotonic() - t))
        t = time.monotonic()
        c.postgres(admin)   # from the root namespace (the source cluster is on 127.0.0.1)
        setup_times.append(("pg_basebackup of the test cluster", time.monotonic() - t))
        enter_netns(c.nets.ns("lb"))
        t = time.monotonic()
        c.postgres_start()
        setup_times.append(("PostgreSQL primary + streaming replica", time.monotonic() - t))
        t = time.monotonic()
        c.redis()
        setup_times.append(("Redis primary + replica + 3 Sentinels", time.monotonic() - t))
        t = time.monotonic()
        c.hosts_start()
        setup_times.append(("3 csmcpd hosts ready", time.monotonic() - t))
        t = time.monotonic()
        hc = c.haproxy()
        wait_until(lambda: hreq("GET", "/ready")[0] == 200, 30, "HAProxy /ready")
        wait_until(lambda: all(hreq("GET", "/ready")[0] == 200 for _ in range(6)), 30,
                   "every host up in HAProxy")
        setup_times.append(("HAProxy (haproxy -c: %s)" % hc, time.monotonic() - t))
        for k, v in setup_times:
            log("set-up: %-45s %.1f s" % (k, v))
        if not a.skip_clients:
            check_clients(results)
        check_replica(c, results)
        check_load(c, results, a)
    except Setup as e:
        print("SET-UP FAILED: %s" % e)
        for h in HOSTS:
            lp = os.path.join(c.logdir, h + ".log")
            if os.path.exists(lp):
                with open(lp, errors="replace") as f:
                    print("--- %s log tail\n%s" % (h, "".join(f.readlines()[-15:])))
        code = 2
    except KeyboardInterrupt:
        print("interrupted")
        code = 2
    finally:
        t = time.monotonic()
        c.teardown()
        log("teardown %.1f s" % (time.monotonic() - t))
    print()
    allp = sum(r[1] for r in results)
    allf = sum(r[2] for r in results)
    for name, p, f, dur in results:
        print("%-7s %s  [%s]" % ("ok" if not f else "FAILED", name, dur))
    print("%d passed, %d failed (total %.0f s)" % (allp, allf + (1 if code else 0),
                                                   time.monotonic() - T0))
    return code or (1 if allf else 0)


if __name__ == "__main__":
    sys.exit(main())
