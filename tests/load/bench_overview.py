#!/usr/bin/python3
"""bench_overview.py - get_client_overview over N seeded accounts: csmcpd (MCP over HTTP, wrk)
next to pgbench running the same SQL function with the same number of database connections,
in the same run. Prints throughput and p50/p99 latency of both and the ratio csmcpd / pgbench.

The comparison isolates what csmcpd adds on top of the database work (HTTP, JSON-RPC, session
and rate-limit checks in Redis, argument validation, the async pool): pgbench runs
`SELECT csmcp.tool_get_client_overview(...)` with -c = workers x pool_size connections,
prepared, a random account per transaction, exactly what each csmcpd call executes.

Database: --database-url (or CSMCP_BENCH_DATABASE_URL) of a migrated database already seeded
with >= --accounts demo accounts; otherwise a private PostgreSQL cluster is created, migrated and
seeded (10,000 accounts take a few minutes). Redis: CSMCP_TEST_REDIS_URL or CSMCP_REDIS_URL.
Build: CSMCP_BUILD_DIR (default build/). Loopback only; bounded: --duration <= 60 s.

Exit status: 0 when both runs completed without errors, 1 otherwise, 2 on set-up failure.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))

import lib  # noqa: E402


def log(msg):
    print("[bench_overview] " + msg, file=sys.stderr, flush=True)


def seeded_accounts(url):
    try:
        return int(lib.psql(url, "SELECT count(*) FROM accounts WHERE client_id LIKE 'demo\\_%'"))
    except AssertionError:
        return 0


def cpu_seconds(pids):
    """utime + stime of the given processes, in seconds (/proc/PID/stat)."""
    tck = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            with open("/proc/%d/stat" % pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tck
        except (OSError, IndexError, ValueError):
            pass
    return total


def run_wrk(port, sessions_file, accounts, connections, duration):
    env = dict(os.environ, BENCH_SESSIONS=sessions_file, BENCH_ACCOUNTS=str(accounts))
    r = subprocess.run(["wrk", "-t", "2", "-c", str(connections), "-d", "%ds" % duration,
                        "--latency", "-s", os.path.join(HERE, "bench_overview.lua"),
                        "http://127.0.0.1:%d/mcp" % port],
                       env=env, capture_output=True, text=True, timeout=duration + 60)
    m = re.search(r"^RESULT (\{.*\})$", r.stdout, re.M)
    if not m:
        raise RuntimeError("wrk produced no RESULT line:\n%s\n%s" % (r.stdout, r.stderr))
    res = json.loads(m.group(1))
    res["rps"] = res["requests"] / (res["duration_us"] / 1e6)
    res["errors"] = sum(res[k] for k in ("err_connect", "err_read", "err_write", "err_timeout",
                                         "bad_status", "bad_body"))
    return res


def run_pgbench(url, accounts, clients, duration):
    d = tempfile.mkdtemp(prefix="bench-pgbench-")
    script = os.path.join(d, "overview.sql")
    with open(script, "w") as f:
        f.write("\\set id random(1, %d)\n"
                "SELECT csmcp.tool_get_client_overview(jsonb_build_object('client_id', "
                "'demo_' || lpad(:id::text, 5, '0')), 'bench');\n" % accounts)
    pgbench = os.path.join(lib.pg_bindir(), "pgbench") if os.path.exists(
        os.path.join(lib.pg_bindir(), "pgbench")) else "pgbench"
    r = subprocess.run([pgbench, "-n", "-M", "prepared", "-c", str(clients), "-j", "2",
                        "-T", str(duration), "-f", script, "-l", "--log-prefix",
                        os.path.join(d, "txn"), url],
                       capture_output=True, text=True, timeout=duration + 60, cwd=d)
    if r.returncode != 0:
        raise RuntimeError("pgbench failed: %s %s" % (r.stdout, r.stderr))
    lat = []
    for name in os.listdir(d):
        if name.startswith("txn"):
            with open(os.path.join(d, name)) as f:
                for line in f:
                    parts = line.split()
                    if len(parts) >= 3:
                        lat.append(int(parts[2]))
    shutil.rmtree(d, ignore_errors=True)
    tps = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", r.stdout)
    failed = re.search(r"number of failed transactions: (\d+)", r.stdout)
    lat.sort()
    return {"tps": float(tps.group(1)) if tps else 0.0,
            "p50_us": lat[len(lat) // 2] if lat else 0,
            "p99_us": lat[min(len(lat) - 1, int(len(lat) * 0.99))] if lat else 0,
            "transactions": len(lat), "errors": int(failed.group(1)) if failed else 0}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--accounts", type=int, default=10000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--pool-size", type=int, default=4)
    ap.add_argument("--connections", type=int, default=64, help="HTTP connections (wrk)")
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3,
                    help="interleaved rounds (csmcpd, pgbench, csmcpd, ...); the median is kept")
    ap.add_argument("--database-url", default=os.environ.get("CSMCP_BENCH_DATABASE_URL"))
    args = ap.parse_args()
    if not 1 <= args.duration <= 60 or not 1 <= args.connections <= 1024 or \
            not 1 <= args.rounds <= 9:
        ap.error("--duration 1..60, --connections 1..1024, --rounds 1..9")
    if not shutil.which("wrk"):
        log("wrk is not installed (Debian package wrk)")
        return 2
    os.environ.setdefault("CSMCP_TEST_REDIS_URL", os.environ.get("CSMCP_REDIS_URL", ""))
    if not os.environ["CSMCP_TEST_REDIS_URL"]:
        log("set CSMCP_TEST_REDIS_URL (or CSMCP_REDIS_URL)")
        return 2

    pg = None
    url = args.database_url
    d = None
    try:
        if not url:
            log("starting a private PostgreSQL cluster")
            pg = lib.ScratchPostgres(databases=["csmcp"]).start()
            url = pg.url("csmcp")
            r = lib.ctl_db(url, "migrate")
            if r.returncode:
                log("migrate failed: " + r.stderr)
                return 2
        have = seeded_accounts(url)
        if have < args.accounts:
            log("seeding %d accounts (have %d)..." % (args.accounts, have))
            t0 = time.monotonic()
            r = lib.ctl_db(url, "seed", "--accounts", str(args.accounts), timeout=3600)
            if r.returncode:
                log("seed failed: " + r.stderr)
                return 2
            log("seeded in %.0f s: %s" % (time.monotonic() - t0, r.stdout.strip()))
        os.environ["CSMCP_TEST_DATABASE_URL"] = url
        dbconns = args.workers * args.pool_size

        d = lib.Csmcpd(workers=args.workers, conf={
            "database": {"url": url, "pool_size": args.pool_size},
            "ratelimit": {"enabled": False}, "log": {"level": "warning"}}).start()
        sessions = [lib.McpSession(d.port) for _ in range(args.connections)]
        sfile = os.path.join(d.dir, "sessions.txt")
        with open(sfile, "w") as f:
            f.write("\n".join(s.session_id for s in sessions) + "\n")
        for s in sessions:
            s.conn.close()  # keep the sessions, free the sockets

        log("warm-up (3 s each)")
        run_wrk(d.port, sfile, args.accounts, args.connections, 3)
        run_pgbench(url, args.accounts, dbconns, 3)

        log("csmcpd: %d workers x pool %d = %d database connections, %d HTTP connections; "
            "pgbench -c %d -M prepared; %d s each, %d rounds"
            % (args.workers, args.pool_size, dbconns, args.connections, dbconns, args.duration,
               args.rounds))
        procs = [d.proc.pid] + lib.worker_pids(d.proc.pid)
        ws, ps = [], []
        # Interleaved rounds: the machine is shared, so load from elsewhere hits both sides.
        for rnd in range(args.rounds):
            cpu0 = cpu_seconds(procs)
            w = run_wrk(d.port, sfile, args.accounts, args.connections, args.duration)
            w["csmcpd_cpu_ms_per_call"] = ((cpu_seconds(procs) - cpu0) * 1000 / w["requests"]
                                           if w["requests"] else 0)
            p = run_pgbench(url, args.accounts, dbconns, args.duration)
            log("round %d: csmcpd %.0f calls/s, pgbench %.0f tx/s" % (rnd + 1, w["rps"], p["tps"]))
            ws.append(w)
            ps.append(p)
        w = sorted(ws, key=lambda x: x["rps"])[len(ws) // 2]
        p = sorted(ps, key=lambda x: x["tps"])[len(ps) // 2]
        w["errors"] = sum(x["errors"] for x in ws)
        p["errors"] = sum(x["errors"] for x in ps)

        print("get_client_overview over %d accounts, %d database connections, %d s x %d "
              "interleaved rounds (median round)" % (args.accounts, dbconns, args.duration,
                                                     args.rounds))
        print("  csmcpd (MCP/HTTP): %8.0f calls/s  p50 %6.2f ms  p99 %6.2f ms  errors %d" %
              (w["rps"], w["p50_us"] / 1000, w["p99_us"] / 1000, w["errors"]))
        print("  csmcpd CPU (supervisor + workers): %.3f ms per call" %
              w["csmcpd_cpu_ms_per_call"])
        print("  pgbench (SQL):     %8.0f tx/s     p50 %6.2f ms  p99 %6.2f ms  errors %d" %
              (p["tps"], p["p50_us"] / 1000, p["p99_us"] / 1000, p["errors"]))
        ratio = w["rps"] / p["tps"] if p["tps"] else 0
        print("  ratio csmcpd / pgbench throughput: %.2f" % ratio)
        print("RESULT " + json.dumps({"csmcpd": w, "pgbench": p, "ratio": round(ratio, 3),
                                      "accounts": args.accounts, "db_connections": dbconns}))
        return 0 if w["errors"] == 0 and p["errors"] == 0 else 1
    finally:
        if d:
            d.stop()
        if pg:
            pg.stop()


if __name__ == "__main__":
    sys.exit(main())
