#!/usr/bin/python3
"""bench_mix.py - many concurrent sessions running the realistic tool mix against csmcpd.

For each connection count in --connections (e.g. 1000,10000,50000): start csmcpd (--workers,
default 4) listening on 127.0.0.1 .. 127.0.0.K (K = wrk processes, so each gets its own 28k
ephemeral ports), open one initialized MCP session per connection, measure the memory of idle
connections, then run K wrk processes (tests/load/mix.lua: 70% reads, 20% analytics, 10% writes
over the seeded accounts) for --duration seconds, optionally while reloading csmcpd every 5 s
(--chaos reload) or SIGKILLing a random worker every 3 s (--chaos kill).

Reports per run: throughput, p50/p99/p99.9 (the worst wrk process), errors by kind, worker
restarts, RSS per worker, memory per idle connection, CPU of csmcpd / PostgreSQL+Redis / wrk.

Needs a migrated and seeded database (`csmcpctl seed --accounts 10000`) and Redis:
CSMCP_TEST_DATABASE_URL / CSMCP_TEST_REDIS_URL (or CSMCP_DATABASE_URL / CSMCP_REDIS_URL).
Bounded: --duration <= 30 s, <= 60000 connections, loopback only. Ports 19540/19549.
Exit status 0 when the error rate is at most --max-error-rate (default 0.001; with --chaos
kill, errors are expected and only reported), 1 otherwise, 2 on set-up failure.
"""
import argparse
import json
import os
import random
import re
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
sys.path.insert(0, HERE)

import bench_toolcall as bt  # noqa: E402  (helpers: proc_tree, cpu_seconds, rss_kib, ...)

PORT = 19540
MAX_CONN_PER_WRK = 15000  # stays under a 20000 fd limit per process
log = bt.log


def worker_pids(d):
    import lib
    return lib.worker_pids(d.proc.pid)


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def mcp_post(conn, headers, msg):
    conn.request("POST", "/mcp", body=json.dumps(msg), headers=headers)
    r = conn.getresponse()
    return r, r.read()


def open_sessions(n, port, token, nthreads=8):
    """n initialized sessions, opened by nthreads keep-alive connections; returns the ids."""
    import http.client
    out, errors = [], []
    lock = threading.Lock()

    def worker(count):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        base = {"Content-Type": "application/json",
                "Accept": "application/json, text/event-stream"}
        if token:
            base["Authorization"] = "Bearer " + token
        mine = []
        try:
            for _ in range(count):
                r, data = mcp_post(conn, base, {
                    "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                        "protocolVersion": bt.PROTOCOL, "capabilities": {},
                        "clientInfo": {"name": "csmcp-bench-mix", "version": "1"}}})
                sid = r.getheader("Mcp-Session-Id")
                if r.status != 200 or not sid:
                    raise RuntimeError("initialize: HTTP %d %s" % (r.status, data[:200]))
                h = dict(base, **{"Mcp-Session-Id": sid, "MCP-Protocol-Version": bt.PROTOCOL})
                r, _ = mcp_post(conn, h, {"jsonrpc": "2.0",
                                          "method": "notifications/initialized"})
                if r.status != 202:
                    raise RuntimeError("notifications/initialized: HTTP %d" % r.status)
                mine.append(sid)
        except Exception as e:
            with lock:
                errors.append(str(e))
        finally:
            conn.close()
        with lock:
            out.extend(mine)

    per = [n // nthreads + (1 if i < n % nthreads else 0) for i in range(nthreads)]
    ts = [threading.Thread(target=worker, args=(c,)) for c in per if c]
    for t in ts:
        t.start()
    for t in ts:
        t.join(600)
    if errors:
        raise RuntimeError("opening sessions: %s" % errors[0])
    return out


def call_tool(port, token, sid, name, args):
    import http.client
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    h = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream",
         "Mcp-Session-Id": sid, "MCP-Protocol-Version": bt.PROTOCOL}
    if token:
        h["Authorization"] = "Bearer " + token
    r, data = mcp_post(conn, h, {"jsonrpc": "2.0", "id": 7, "method": "tools/call",
                                 "params": {"name": name, "arguments": args}})
    conn.close()
    msg = json.loads(data)
    if r.status != 200 or "result" not in msg or msg["result"].get("isError"):
        raise RuntimeError("%s: HTTP %d %s" % (name, r.status, data[:300]))
    return msg["result"].get("structuredContent") or {}


def account_ids(port, token, sid, want):
    """client ids of the seeded accounts, through list_clients (no database client needed)."""
    ids, offset = [], 0
    while len(ids) < want and offset < 100000:
        sc = call_tool(port, token, sid, "list_clients", {"limit": 1000, "offset": offset,
                                                           "sort_by": "client_id"})
        page = [c["client_id"] for c in sc.get("clients", [])]
        ids.extend(page)
        if len(page) < 1000:
            break
        offset += 1000
    return ids


MIX = [("get_client_overview", lambda cid: {"client_id": cid}),
       ("list_clients", lambda cid: {"limit": 20, "offset": 100, "tier_filter": "enterprise"}),
       ("calculate_health_score", lambda cid: {"client_id": cid}),
       ("track_usage_engagement", lambda cid: {"client_id": cid}),
       ("update_client_info", lambda cid: {"client_id": cid,
                                           "updates": {"csm_assigned": "csm-probe"}})]


def tool_latencies(port, sid, ids, n=10):
    """Median latency (ms) of each mix tool, called n times in a row on an idle server."""
    out = {}
    for name, args in MIX:
        times = []
        for i in range(n):
            t0 = time.monotonic()
            call_tool(port, None, sid, name, args(ids[(i * 7919) % len(ids)]))
            times.append((time.monotonic() - t0) * 1000)
        times.sort()
        out[name] = round(times[len(times) // 2], 1)
    return out


def idle_conn_memory(port, worker_pids, n):
    """Opens n idle TCP connections, returns (KiB of worker RSS per connection, opened)."""
    before = sum(bt.rss_kib(p) for p in worker_pids)
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.settimeout(5)
            try:
                s.connect(("127.0.0.1", port))
            except OSError:
                s.close()
                break
            socks.append(s)
        time.sleep(1.5)  # let the workers accept them all
        after = sum(bt.rss_kib(p) for p in worker_pids)
        return ((after - before) / len(socks) if socks else 0.0), len(socks)
    finally:
        for s in socks:
            s.close()


def chaos_loop(kind, d, stop, events):
    """reload every 5 s, or SIGKILL a random worker every 3 s, until stop is set."""
    period = 5.0 if kind == "reload" else 3.0
    while not stop.wait(period):
        if kind == "reload":
            r = d.ctl("reload", "--wait", "--timeout", "20", timeout=30)
            events.append(("reload", r.returncode, (r.stdout + r.stderr).strip()[:200]))
        else:
            pids = worker_pids(d)
            if pids:
                p = random.choice(pids)
                try:
                    os.kill(p, signal.SIGKILL)
                    events.append(("kill", p, ""))
                except OSError:
                    pass


def run_wrks(nconn, nprocs, duration, threads_per, sessions_file, accounts_file, token,
             script="mix.lua", think_ms=0, timeout_s=10):
    per = [nconn // nprocs + (1 if i < nconn % nprocs else 0) for i in range(nprocs)]
    procs = []
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    for i, c in enumerate(per):
        env = dict(os.environ, BENCH_SESSIONS=sessions_file, BENCH_ACCOUNTS=accounts_file,
                   BENCH_TOKEN=token or "", BENCH_SEED=str(i + 1), BENCH_PROTOCOL=bt.PROTOCOL,
                   BENCH_THINK_MS=str(think_ms))
        args = ["wrk", "-t%d" % min(threads_per, c), "-c%d" % c, "-d%ds" % duration,
                "--timeout", "%ds" % timeout_s, "--latency", "-s", os.path.join(HERE, script),
                "http://127.0.0.%d:%d/mcp" % (i + 1, PORT)]
        procs.append(subprocess.Popen(args, env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True))
    results = []
    for p in procs:
        out, err = p.communicate(timeout=duration + 120)
        m = re.search(r"^RESULT (\{.*\})$", out, re.M)
        if not m:
            raise RuntimeError("wrk failed (%d): %s %s" % (p.returncode, out[-400:], err[-400:]))
        r = json.loads(m.group(1))
        for k in ("rpc_error", "tool_error", "bad_body"):
            r.setdefault(k, 0)
        r["tool_error"] += r.pop("bad_body")  # toolcall.lua: not a successful result
        r.setdefault("sample", "")
        results.append(r)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    wrk_cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return results, wrk_cpu


def one_run(a, nconn, accounts_file):
    nprocs = max(1, -(-nconn // MAX_CONN_PER_WRK))
    listen = ["127.0.0.%d:%d" % (i + 1, PORT) for i in range(nprocs)]
    for v in ("DATABASE", "REDIS"):
        if not os.environ.get("CSMCP_TEST_%s_URL" % v) and os.environ.get("CSMCP_%s_URL" % v):
            os.environ["CSMCP_TEST_%s_URL" % v] = os.environ["CSMCP_%s_URL" % v]
    import lib
    conf = {"server": {"listen": listen, "max_connections": 100000,
                       "worker_timeout": 30},
            "admin": {"listen": "127.0.0.1:%d" % (PORT + 9)},
            "log": {"level": "warning"},
            "mcp": {"allowed_hosts": ["localhost", "[::1]"] +
                    ["127.0.0.%d" % (i + 1) for i in range(nprocs)]},
            "database": {"pool_size": a.pool_size},
            "ratelimit": {"key_per_minute": 10000000, "tool_per_minute": 10000000,
                          "write_per_minute": 10000000}}
    d = lib.Csmcpd(workers=a.workers, conf=conf, fixtures=(a.mix == "simple"), auth=False)
    d.port, d.admin_port = PORT, PORT + 9
    res = {"connections": nconn, "wrk_processes": nprocs, "chaos": a.chaos, "mix": a.mix,
           "think_ms": a.think_ms}
    stop = threading.Event()
    events = []
    chaos = None
    sf = None
    try:
        d.start(wait_ready=True, timeout=60)
        workers0 = worker_pids(d)
        t0 = time.monotonic()
        sessions = open_sessions(nconn, PORT, None)
        res["session_setup_s"] = round(time.monotonic() - t0, 1)
        log("%d connections: %d sessions opened in %.1f s" % (nconn, len(sessions),
                                                               res["session_setup_s"]))
        with tempfile.NamedTemporaryFile("w", prefix="bench-mix-sessions-", delete=False) as f:
            f.write("\n".join(sessions) + "\n")
        sf = f.name
        idle_n = min(nconn, 10000)
        res["idle_kib_per_conn"], res["idle_conns_measured"] = idle_conn_memory(
            PORT, workers0, idle_n)
        res["rss_idle_kib"] = [bt.rss_kib(p) for p in workers0]
        rp = bt.redis_pid(os.environ.get("CSMCP_TEST_REDIS_URL"))
        pm = pg_postmaster(os.environ.get("CSMCP_TEST_DATABASE_URL"))
        srv0 = tree_cpu(d.proc.pid)
        h0 = tree_cpu(rp) + tree_cpu(pm)
        if a.chaos != "none":
            chaos = threading.Thread(target=chaos_loop, args=(a.chaos, d, stop, events))
            chaos.start()
        # RSS under load: sampled half-way through
        sampler = threading.Timer(a.duration / 2.0, lambda: res.__setitem__(
            "rss_load_kib", [bt.rss_kib(p) for p in worker_pids(d)]))
        sampler.start()
        wrks, wrk_cpu = run_wrks(nconn, nprocs, a.duration, a.threads, sf, accounts_file, None,
                                 "mix.lua" if a.mix == "tools" else "toolcall.lua", a.think_ms,
                                 a.timeout)
        sampler.join()
        stop.set()
        if chaos:
            chaos.join(60)
        srv_cpu = tree_cpu(d.proc.pid) - srv0
        res["server_cpu_s"] = round(srv_cpu, 1)
        res["db_redis_cpu_s"] = round(tree_cpu(rp) + tree_cpu(pm) - h0, 1)
        res["wrk_cpu_s"] = round(wrk_cpu, 1)
        workers1 = worker_pids(d)
        res["worker_restarts"] = len(set(workers1) - set(workers0))
        res["chaos_events"] = len(events)
        res["chaos_failures"] = [e for e in events if e[0] == "reload" and e[1] != 0][:3]
        secs = max(w["duration_us"] for w in wrks) / 1e6
        res["requests"] = sum(w["requests"] for w in wrks)
        res["rps"] = res["requests"] / secs if secs else 0.0
        for k in ("err_connect", "err_read", "err_write", "err_timeout", "bad_status",
                  "rpc_error", "tool_error"):
            res[k] = sum(w[k] for w in wrks)
        for k in ("p50_us", "p99_us", "p999_us", "max_us"):
            res[k] = max(w[k] for w in wrks)
        res["errors"] = sum(res[k] for k in ("err_connect", "err_read", "err_write",
                                             "err_timeout", "bad_status", "rpc_error",
                                             "tool_error"))
        res["error_rate"] = res["errors"] / max(1, res["requests"] + res["err_connect"])
        # wrk counts only completed requests: a connection still waiting at the end is neither
        # a request nor an error. Without think time (every connection sends at once), at
        # least this many connections never got an answer. (With --think-ms, wrk delays even
        # a connection's first request, so some connections rightly send nothing.)
        res["unanswered_min"] = max(0, nconn - res["requests"])
        res["sample"] = next((w["sample"] for w in wrks if w["sample"]), "")
    finally:
        stop.set()
        d.stop()
        if sf:
            os.unlink(sf)
    return res


def tree_cpu(root):
    """CPU seconds of root and its descendants, including children that exited and were reaped
    (cutime/cstime), so workers replaced by a reload or a kill still count."""
    if root is None:
        return 0.0
    total = 0.0
    for p in bt.proc_tree(root):
        try:
            with open("/proc/%d/stat" % p) as f:
                fl = f.read().rsplit(")", 1)[1].split()
            total += int(fl[11]) + int(fl[12])
            total += int(fl[13]) + int(fl[14])
        except (OSError, IndexError, ValueError):
            pass
    return total / bt.CLK_TCK


def pg_postmaster(url):
    pids = pg_pids(url)
    return pids[0] if pids else None


def pg_pids(url):
    """The PostgreSQL server behind url (postmaster and its backends), found by its port."""
    m = re.search(r"@[^:/]+:(\d+)/", url or "")
    if not m:
        return []
    try:
        out = subprocess.run(["ss", "-ltnpH", "sport = :%s" % m.group(1)], capture_output=True,
                             text=True, timeout=5).stdout
    except (OSError, subprocess.TimeoutExpired):
        return []
    pm = re.search(r"pid=(\d+)", out)
    return bt.proc_tree(int(pm.group(1))) if pm else []


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--connections", default="1000")
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2, help="threads per wrk process")
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--pool-size", type=int, default=8, help="database.pool_size per worker")
    ap.add_argument("--chaos", choices=("none", "reload", "kill"), default="none")
    ap.add_argument("--mix", choices=("tools", "simple"), default="tools",
                    help="tools: the 70/20/10 mix (database-bound); simple: tools/call "
                    "test_simple_text (no database: connection handling only)")
    ap.add_argument("--timeout", type=int, default=10, help="wrk request timeout, seconds")
    ap.add_argument("--think-ms", type=int, default=0,
                    help="mean pause between a connection's requests (0: back to back)")
    ap.add_argument("--max-error-rate", type=float, default=0.001)
    ap.add_argument("--json")
    a = ap.parse_args()
    conns = [int(x) for x in a.connections.split(",") if x.strip()]
    if not 1 <= a.duration <= 30 or any(not 1 <= c <= 60000 for c in conns) or \
            not 1 <= a.timeout <= 60:
        ap.error("--duration 1..30 s, connections 1..60000, --timeout 1..60 s")
    hard = raise_nofile()
    log("fd limit %d" % hard)
    # accounts: one session, list_clients pages
    for v in ("DATABASE", "REDIS"):
        if not os.environ.get("CSMCP_TEST_%s_URL" % v) and os.environ.get("CSMCP_%s_URL" % v):
            os.environ["CSMCP_TEST_%s_URL" % v] = os.environ["CSMCP_%s_URL" % v]
    ids, lat = [], {}
    if a.mix == "tools":
        import lib
        d = lib.Csmcpd(workers=1, conf={"server": {"listen": ["127.0.0.1:%d" % PORT]},
                                        "admin": {"listen": "127.0.0.1:%d" % (PORT + 9)}},
                       fixtures=False, auth=False)
        d.port, d.admin_port = PORT, PORT + 9
        try:
            d.start(wait_ready=True, timeout=60)
            sid = open_sessions(1, PORT, None, 1)[0]
            ids = account_ids(PORT, None, sid, 10000)
            lat = tool_latencies(PORT, sid, ids) if ids else {}
        finally:
            d.stop()
        if not ids:
            log("no accounts: seed the database first (csmcpctl seed --accounts 10000)")
            return 2
        log("%d accounts; idle single-call median latency: %s" % (
            len(ids), ", ".join("%s %.1f ms" % kv for kv in lat.items())))
    with tempfile.NamedTemporaryFile("w", prefix="bench-mix-accounts-", delete=False) as f:
        f.write("\n".join(ids) + "\n")
    results, bad = [], False
    try:
        for c in conns:
            try:
                r = one_run(a, c, f.name)
            except Exception as e:
                log("%d connections: FAILED: %s" % (c, e))
                bad = True
                continue
            r["accounts"] = len(ids)
            results.append(r)
            if a.chaos != "kill" and r["error_rate"] > a.max_error_rate:
                bad = True
    finally:
        os.unlink(f.name)
    print("\n%s, %d accounts, csmcpd %d workers, %d s per run, think time %d ms, chaos: %s, "
          "load average %.1f" % (
              "tool mix (35% overview, 35% list, 10% health score, 10% usage, 10% update)"
              if a.mix == "tools" else "tools/call test_simple_text", len(ids), a.workers,
              a.duration, a.think_ms, a.chaos, os.getloadavg()[0]))
    print("%7s %8s %7s %7s %8s %8s %9s %8s %10s %11s %s" % (
        "conns", "req/s", "p50 ms", "p99 ms", "p99.9 ms", "errors", "err rate", "restarts",
        "idle KiB/c", "RSS MiB/wkr", "CPU s csmcpd/db+redis/wrk"))
    for r in results:
        print("%7d %8.0f %7.1f %7.1f %8.1f %8d %8.3f%% %8d %10.1f %11.1f %s" % (
            r["connections"], r["rps"], r["p50_us"] / 1e3, r["p99_us"] / 1e3, r["p999_us"] / 1e3,
            r["errors"], 100 * r["error_rate"], r["worker_restarts"], r["idle_kib_per_conn"],
            max(r.get("rss_load_kib") or [0]) / 1024.0,
            "%.1f/%.1f/%.1f" % (r["server_cpu_s"], r["db_redis_cpu_s"], r["wrk_cpu_s"])))
        if r["unanswered_min"] and not r["think_ms"]:
            print("   only %d requests completed: at least %d connections got no answer within "
                  "the run" % (r["requests"], r["unanswered_min"]))
        if r["errors"]:
            print("   errors: connect %d read %d write %d timeout %d non-200 %d rpc %d isError %d;"
                  " sample: %s" % (r["err_connect"], r["err_read"], r["err_write"],
                                   r["err_timeout"], r["bad_status"], r["rpc_error"],
                                   r["tool_error"], r["sample"][:160]))
        if r["chaos_events"]:
            print("   chaos: %d %s events, failed reloads: %s" % (
                r["chaos_events"], a.chaos, r["chaos_failures"] or "none"))
    if a.json:
        with open(a.json, "w") as fj:
            json.dump({"args": vars(a), "results": results, "tool_latency_ms": lat}, fj,
                      indent=1)
    return 1 if bad or not results else 0


if __name__ == "__main__":
    sys.exit(main())
