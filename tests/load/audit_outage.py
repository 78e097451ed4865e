#!/usr/bin/env python3
"""Full-speed audited load with PostgreSQL stopped in the middle (issue 26).

wrk (64 connections, tools/call test_simple_text) against csmcpd (4 workers, rate limiter and
audit on, audit.on_failure = refuse with the local spool; --auth adds API-key auth) for
--duration seconds; --down-at seconds in, the PostgreSQL cluster of this checkout
(var/test/pg, or CSMCP_TEST_PG_DATA) is stopped for --down seconds. Afterwards, once the
workers hold nothing unshipped: every tool call the server finished must have its audit
record, csmcp_audit_dropped_total must not have grown, and `csmcpctl audit verify` must pass
(exit 1 otherwise). Prints the calls finished during the outage (answered from the spool).

With --auth, calls stop being answered once a worker's API-key cache entry expires during the
outage (503 "credential store unavailable": authentication needs the database), which is not
an audit matter; without it the calls go on through the outage.

Stops the checkout's test PostgreSQL: never run it beside other tests on the same cluster.
Environment as for bench_toolcall.py (scripts/dev services test; CSMCP_TEST_DATABASE_URL).
"""
import argparse
import os
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import bench_toolcall as b  # noqa: E402
import lib  # noqa: E402

PG_DATA = os.environ.get("CSMCP_TEST_PG_DATA") or os.path.join(lib.ROOT, "var", "test", "pg")


def pg_ctl(*args):
    cmd = [os.path.join(lib.pg_bindir(), "pg_ctl"), "-D", PG_DATA] + list(args)
    if os.getuid() == 0:
        cmd = ["runuser", "-u", "postgres", "--"] + cmd
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--duration", type=int, default=30)
    ap.add_argument("--down-at", type=int, default=10)
    ap.add_argument("--down", type=int, default=10)
    ap.add_argument("--auth", action="store_true")
    ap.add_argument("--port", type=int, default=21520)
    a = ap.parse_args()
    if not (5 <= a.duration <= 60 and 1 <= a.down_at and 1 <= a.down <= 30 and
            a.down_at + a.down < a.duration):
        ap.error("need 5 <= duration <= 60, down <= 30 and down-at + down < duration")
    if not os.path.isdir(PG_DATA):
        ap.error("no local test cluster at %s" % PG_DATA)
    a.connections, a.threads, a.warmup, a.audit_check = 64, 2, 2, True
    t = b.CsmcpdTarget("csmcpd-auth" if a.auth else "csmcpd", a.port, 4, a.auth)
    b.prepare_target(t, a)
    bad = False
    try:
        id0, calls0, dropped0 = b.audit_state(t)
        res = {}

        def load():
            res.update(b.run_wrk(t, a.duration, a.connections, a.threads, t.sessions_file))

        th = threading.Thread(target=load)
        th.start()
        time.sleep(a.down_at)
        r = pg_ctl("stop", "-m", "fast", "-w")
        if r.returncode:
            raise RuntimeError("pg_ctl stop: %s" % r.stderr)
        t_down = time.monotonic()
        first = None
        try:
            for _ in range(a.down - 1):
                time.sleep(1)
                m = lib.http_request(t.port + 1, "GET", "/metrics", timeout=5)[2].decode()
                c = b._metric(m, "csmcp_mcp_tool_calls_total", 'tool="test_simple_text"')
                first = c if first is None else first
            during = c - first
            print("during the outage: %d tool calls finished (1 s .. %d s after the stop); "
                  "%d records spooled but not in PostgreSQL; refused %d" % (
                      during, a.down - 1, b._metric(m, "csmcp_audit_spool_records"),
                      b._metric(m, "csmcp_audit_refused_total")), flush=True)
        finally:
            r = pg_ctl("start", "-w", "-l", os.path.join(PG_DATA, "server.log"))
        print("PostgreSQL down %.1f s (start rc %d)" % (time.monotonic() - t_down, r.returncode))
        th.join()
        id1, calls1, dropped1 = b.audit_state(t)
        n = b.audit_count(t, id0, id1)
        secs = res["duration_us"] / 1e6
        print("wrk: %d answers in %.1f s (%.0f/s), p50 %.1f ms, p99 %.1f ms; errors: connect %d "
              "read %d write %d timeout %d non-200 %d bad-body %d" % (
                  res["requests"], secs, res["requests"] / secs, res["p50_us"] / 1000,
                  res["p99_us"] / 1000, res["err_connect"], res["err_read"], res["err_write"],
                  res["err_timeout"], res["bad_status"], res["bad_body"]))
        print("audit: %d records for %d tool calls finished by the server; "
              "csmcp_audit_dropped_total +%d" % (n, calls1 - calls0, dropped1 - dropped0))
        v = t.d.ctl_db("audit", "verify")
        print((v.stdout + v.stderr).strip()[:160])
        bad = n != calls1 - calls0 or dropped1 != dropped0 or v.returncode != 0
    finally:
        t.stop()
        os.unlink(t.sessions_file)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
