#!/usr/bin/python3
"""bench_sql_tools.py - p50/p99 of SQL tools (csmcp.tool_<name>(args, principal)) at the
database, one call at a time, with pgbench (-n -c 1 -t N, per-transaction log).

usage: bench_sql_tools.py DATABASE_URL [-n CALLS] NAME:ARGS_JSON ...
  e.g. bench_sql_tools.py postgresql://csmcp@127.0.0.1:55407/csmcp10k -n 50 \\
           'track_revenue_expansion:{}' 'track_renewals:{"client_id": "demo_00042"}'
Each spec is warmed up with 3 calls (not counted), then timed N times; prints one line per
spec: name, args, calls, p50 ms, p99 ms, max ms. Writes run in their own transactions, as the
MCP server runs them (one call = one statement = one transaction). Latency here excludes the
MCP/HTTP layer (sub-millisecond in csmcpd) and includes the client round trip.
"""
import argparse
import glob
import os
import shutil
import subprocess
import sys
import tempfile


def pgbench_bin():
    p = shutil.which("pgbench")
    if p:
        return p
    c = sorted(glob.glob("/usr/lib/postgresql/*/bin/pgbench"))
    if not c:
        sys.exit("pgbench not found")
    return c[-1]


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, int(round(q * len(xs) + 0.5)) - 1))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("-n", type=int, default=50)
    ap.add_argument("specs", nargs="+")
    a = ap.parse_args()
    pb = pgbench_bin()
    print("%-36s %-44s %5s %8s %8s %8s" % ("tool", "args", "calls", "p50 ms", "p99 ms", "max ms"))
    for spec in a.specs:
        name, _, args = spec.partition(":")
        args = args or "{}"
        with tempfile.TemporaryDirectory() as d:
            script = os.path.join(d, "s.sql")
            with open(script, "w") as f:
                f.write("SELECT csmcp.tool_%s($$%s$$::jsonb, 'bench') IS NOT NULL;\n" % (name, args))
            subprocess.run([pb, "-n", "-c", "1", "-t", "3", "-f", script, a.url], check=True,
                           capture_output=True, cwd=d)
            r = subprocess.run([pb, "-n", "-c", "1", "-t", str(a.n), "-f", script, "--log",
                                "--log-prefix", os.path.join(d, "log"), a.url],
                               capture_output=True, text=True, cwd=d)
            if r.returncode != 0:
                print("%-36s failed: %s" % (name, r.stderr.strip()[-300:]))
                continue
            lat = []
            for lf in glob.glob(os.path.join(d, "log*")):
                with open(lf) as f:
                    lat += [int(line.split()[2]) / 1000.0 for line in f if line.strip()]
        print("%-36s %-44s %5d %8.1f %8.1f %8.1f" % (name, args[:44], len(lat), pct(lat, 0.50),
                                                    pct(lat, 0.99), max(lat)))


if __name__ == "__main__":
    main()
