#!/usr/bin/python3
"""sec_bench.py - the throughput cost of authentication + rate limiting (owner: sec).

The same wrk benchmark as tests/load/bench_toolcall.py (tests/load/toolcall.lua: keep-alive
POST tools/call test_simple_text on initialized sessions) against two csmcpd configurations,
in interleaved rounds (A B A B ...), median round each:
  open     auth.required = false, ratelimit.enabled = false
  secured  auth.required = true with an API key (cache-hit path) and ratelimit.enabled = true
           with limits high enough never to trigger (every request still runs the Redis
           token-bucket script)
Prints requests/s, p50/p99 latency and the ratio secured/open. Not part of the test run
(bounded: --duration <= 20 s, --rounds <= 5). Needs wrk, PostgreSQL and Redis like the
integration tests.

  CSMCP_BUILD_DIR=build python3 tests/integration/sec_bench.py --duration 5 --rounds 2
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import lib  # noqa: E402
import sec_util as su  # noqa: E402

LUA = os.path.join(lib.ROOT, "tests", "load", "toolcall.lua")
HIGH = 10000000


def start(secured, workers):
    conf = {"ratelimit": {"enabled": secured, "key_per_minute": HIGH, "tool_per_minute": HIGH,
                          "write_per_minute": HIGH}, "log": {"level": "warning"}}
    d = lib.Csmcpd(workers=workers, auth=secured, fixtures=True, conf=conf)
    d.start(timeout=60)
    token = su.create_key(d.conf_path, "read", "bench") if secured else None
    return d, token


def cpu_seconds(pids):
    """utime + stime of the given processes, in seconds."""
    total = 0
    for pid in pids:
        try:
            with open("/proc/%d/stat" % pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except OSError:
            pass
    return total / os.sysconf("SC_CLK_TCK")


def run_wrk(d, token, duration, connections):
    sessions = []
    for _ in range(min(connections, 16)):
        s = lib.McpSession(d.port, token=token)
        sessions.append(s.session_id)
        s.conn.close()
    with tempfile.NamedTemporaryFile("w", delete=False, suffix=".txt") as f:
        f.write("\n".join(sessions) + "\n")
        path = f.name
    env = dict(os.environ, BENCH_SESSIONS=path, BENCH_TOKEN=token or "")
    pids = lib.worker_pids(d.proc.pid)
    cpu0 = cpu_seconds(pids)
    out = subprocess.run(["wrk", "-t2", "-c%d" % connections, "-d%ds" % duration, "-s", LUA,
                          "http://127.0.0.1:%d/mcp" % d.port], env=env, capture_output=True,
                         text=True, timeout=duration + 60).stdout
    cpu = cpu_seconds(pids) - cpu0
    os.unlink(path)
    line = [l for l in out.splitlines() if l.startswith("RESULT ")][0]
    r = json.loads(line[7:])
    r["rps"] = r["requests"] / (r["duration_us"] / 1e6)
    r["errors"] = sum(v for k, v in r.items() if k.startswith(("err_", "bad_")))
    r["per_cpu_s"] = r["requests"] / cpu if cpu > 0 else 0.0
    return r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--workers", type=int, default=2)
    a = ap.parse_args()
    a.duration = min(a.duration, 20)
    a.rounds = min(a.rounds, 5)
    results = {"open": [], "secured": []}
    for rnd in range(a.rounds):
        for name in ("open", "secured"):
            d, token = start(name == "secured", a.workers)
            try:
                run_wrk(d, token, 1, a.connections)  # warm-up (caches, prepared statements)
                r = run_wrk(d, token, a.duration, a.connections)
            finally:
                d.stop()
            results[name].append(r)
            print("round %d %-8s %8.0f req/s  %7.0f req per worker CPU-s  p50 %6.2f ms  "
                  "p99 %6.2f ms  errors %d" % (rnd + 1, name, r["rps"], r["per_cpu_s"],
                                               r["p50_us"] / 1e3, r["p99_us"] / 1e3, r["errors"]),
                  flush=True)
    med = {k: statistics.median(x["rps"] for x in v) for k, v in results.items()}
    cpu = {k: statistics.median(x["per_cpu_s"] for x in v) for k, v in results.items()}
    print("median: open %.0f req/s, secured %.0f req/s, ratio secured/open = %.3f"
          % (med["open"], med["secured"], med["secured"] / med["open"]))
    print("median worker efficiency: open %.0f, secured %.0f requests per CPU-second, ratio "
          "%.3f (excludes Redis' CPU for the token-bucket script)"
          % (cpu["open"], cpu["secured"], cpu["secured"] / cpu["open"]))
    errors = sum(x["errors"] for v in results.values() for x in v)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
