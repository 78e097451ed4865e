#!/usr/bin/python3
"""bench_tools.py - per-tool latency table (issue 21, TOOLS.md's bar): every registered tool
that has a read call (and the analyses that store what they find), one account/object and
portfolio shapes, through csmcpd (MCP over HTTP, wrk, one connection) and the same SQL through
pgbench (one connection, prepared) side by side, in the same minute.

For each case: wrk -t1 -c1 for --duration seconds against csmcpd, then pgbench -c1 -M prepared
for the same time on `SELECT csmcp.tool_<name>(<the same arguments>::jsonb, 'bench')`. One
connection each: calls/s is the inverse of the mean latency, and the ratio csmcpd / pgbench
(calls/s) is what csmcpd (HTTP, JSON-RPC, session and scope checks, validation, the async pool,
audit) costs on top of the database work. Accounts: a different random demo account per call
(@C@ in the arguments; the same uniform draw in both tools); objects (@T@ ticket, ...) are one
fixed row looked up at start.

Environment: CSMCP_TEST_DATABASE_URL (a migrated database seeded with --accounts N),
CSMCP_TEST_REDIS_URL, CSMCP_BUILD_DIR (default build/). Loopback only. Bounded: --duration
<= 10 s per side and case; prints the load average with every line.

--connections N (default 1, at most 64): wrk -cN against csmcpd (database.pool_size N per worker,
--workers W, default 1) and pgbench -cN: throughput with concurrent callers, where csmcpd's
per-call durable audit flush is group-committed (docs/scale.md section 5).

Warm-up: before each case one untimed call of its SQL through psql (@C@ = demo_00001), so a
case measures the steady state of a day: the day's one-off work - the engagement day table's
fill, which the monitor process does after UTC midnight (docs/monitors.md section 1), an
analysis' first persisting of what it finds - is not counted. A warm-up over 1 s is printed as
a comment line. --no-warmup measures from the first call.

usage: bench_tools.py [--duration 2] [--only REGEX] [--shape one|portfolio] [--json FILE]
                      [--connections N] [--workers W] [--audit on|off] [--no-warmup]
Exit status: 0 when every case ran without errors, 1 otherwise (a case whose demo object is
missing counts as failed); every tool with a read call
that has no case here is listed as MISSING (and fails the run).
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
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))

import lib  # noqa: E402

# (tool, shape, arguments). @C@ = a random demo account per call; @T@ = a demo ticket;
# @CO@ = a demo community member's community; @E@ = an EBR; @A@ = an advocate; @K@ = a KB
# article; @M@ = a community member; @P@ = an onboarding account (has a plan); @X@ = a churned
# account; @W@ = a workflow; @N@ = a newsletter; @S@ = a retention campaign; @PAR@ = a parent account;
# @AC@ = an account with an active contract (cross-sell answers "no active contract" otherwise).
# "one" = one account or object (bar: p99 <= 50 ms); "portfolio" = a portfolio analysis (250 ms).
CASES = [
    ("get_client_overview", "one", {"client_id": "@C@"}),
    ("get_client_timeline", "one", {"client_id": "@C@"}),
    ("list_clients", "portfolio", {"limit": 20}),
    ("list_clients", "portfolio", {"limit": 20, "tier_filter": "enterprise", "sort_by": "health_score"}),
    ("calculate_health_score", "one", {"client_id": "@C@"}),
    ("track_usage_engagement", "one", {"client_id": "@C@"}),
    ("track_feature_adoption", "one", {"client_id": "@C@"}),
    ("track_feature_adoption", "portfolio", {}),
    ("track_adoption_milestones", "one", {"client_id": "@C@"}),
    ("track_adoption_milestones", "portfolio", {}),
    ("analyze_engagement_patterns", "one", {"analysis_scope": "individual", "scope_filter": {"client_id": "@C@"}}),
    ("analyze_engagement_patterns", "portfolio", {}),
    ("manage_lifecycle_stages", "one", {"client_id": "@C@"}),
    ("manage_lifecycle_stages", "portfolio", {}),
    ("segment_customers", "portfolio", {"segmentation_type": "value_based"}),
    ("segment_by_value_tier", "portfolio", {}),
    ("identify_churn_risk", "one", {"client_id": "@C@"}),
    ("identify_churn_risk", "portfolio", {"limit": 20}),
    ("score_risk_factors", "one", {"client_id": "@C@"}),
    ("monitor_satisfaction", "one", {"client_id": "@C@"}),
    ("monitor_satisfaction", "portfolio", {}),
    ("analyze_churn_postmortem", "one", {"client_id": "@X@"}),
    ("manage_escalations", "portfolio", {"action": "list"}),
    ("execute_retention_campaign", "one", {"action": "get", "campaign_id": "@S@"}),
    ("automate_retention_campaigns", "portfolio", {"trigger_type": "usage_decline"}),
    ("automate_retention_campaigns", "portfolio", {"trigger_type": "health_score"}),
    ("identify_upsell_opportunities", "one", {"client_id": "@C@"}),
    ("identify_upsell_opportunities", "portfolio", {"limit": 20}),
    ("identify_crosssell_opportunities", "one", {"client_id": "@AC@"}),
    ("identify_crosssell_opportunities", "portfolio", {"limit": 20}),
    ("identify_expansion_opportunities", "one", {"client_id": "@C@"}),
    ("identify_expansion_opportunities", "portfolio", {"limit": 20}),
    ("track_renewals", "one", {"client_id": "@C@"}),
    ("track_renewals", "portfolio", {"limit": 20}),
    ("forecast_renewals", "one", {"client_id": "@C@"}),
    ("forecast_renewals", "portfolio", {"limit": 20}),
    ("optimize_customer_lifetime_value", "one", {"client_id": "@C@"}),
    ("optimize_customer_lifetime_value", "portfolio", {}),
    ("track_revenue_expansion", "portfolio", {}),
    ("analyze_feedback_sentiment", "one", {"client_id": "@C@"}),
    ("analyze_feedback_sentiment", "portfolio", {}),
    ("analyze_product_usage", "one", {"client_id": "@C@"}),
    ("track_cs_metrics", "one", {"metric_type": "nps", "client_id": "@C@"}),
    ("track_cs_metrics", "portfolio", {"metric_type": "nps"}),
    ("track_cs_metrics", "portfolio", {"metric_type": "csat"}),
    ("manage_voice_of_customer", "portfolio", {"action": "track_feedback_loop"}),
    ("manage_voice_of_customer", "portfolio", {"action": "measure_program_effectiveness"}),
    ("track_onboarding_progress", "one", {"client_id": "@P@"}),
    ("map_customer_journey", "one", {"client_id": "@C@"}),
    ("optimize_time_to_value", "one", {"client_id": "@P@"}),
    ("optimize_onboarding_process", "portfolio", {}),
    ("manage_certification_program", "one", {"action": "list", "client_id": "@C@"}),
    ("handle_support_ticket", "one", {"action": "get", "ticket_id": "@T@"}),
    ("handle_support_ticket", "one", {"action": "list", "client_id": "@C@"}),
    ("handle_support_ticket", "portfolio", {"action": "list", "sla_state": "at_risk"}),
    ("analyze_support_performance", "one", {"client_id": "@C@"}),
    ("analyze_support_performance", "portfolio", {}),
    ("analyze_support_performance", "portfolio", {"analysis_type": "sla"}),
    ("analyze_support_performance", "portfolio", {"analysis_type": "agent"}),
    ("manage_customer_portal", "one", {"client_id": "@C@"}),
    ("manage_knowledge_base", "portfolio", {"action": "search", "search_query": "export report"}),
    ("manage_knowledge_base", "one", {"action": "get", "article_id": "@K@"}),
    ("manage_knowledge_base", "portfolio", {"action": "analytics"}),
    ("send_personalized_email", "one", {"action": "get_status", "campaign_id": "@EM@"}),
    ("automate_communications", "portfolio", {"action": "list"}),
    ("automate_newsletters", "portfolio", {"action": "list_newsletters"}),
    ("automate_newsletters", "one", {"action": "track_performance", "newsletter_id": "@N@"}),
    ("conduct_executive_review", "portfolio", {"action": "list_upcoming_ebrs"}),
    ("conduct_executive_review", "one", {"action": "get_ebr_details", "ebr_id": "@E@"}),
    ("manage_advocacy_program", "portfolio", {"action": "list_advocates"}),
    ("manage_advocacy_program", "one", {"action": "get_advocate_profile", "advocate_id": "@A@"}),
    ("manage_advocacy_program", "portfolio", {"action": "get_program_analytics"}),
    ("manage_community", "portfolio", {"action": "list_members", "community_id": "@CO@"}),
    ("manage_community", "one", {"action": "get_member_profile", "member_id": "@M@"}),
    ("manage_community", "portfolio", {"action": "get_analytics", "community_id": "@CO@"}),
    ("explain_health_score", "one", {"client_id": "@C@"}),
    ("find_health_movers", "portfolio", {}),
    ("prioritize_portfolio", "portfolio", {}),
    ("resolve_account", "one", {"query": "Globex Labs 42"}),
    ("manage_account_hierarchy", "one", {"action": "rollup", "client_id": "@PAR@"}),
    ("manage_health_scorecards", "portfolio", {"action": "list"}),
    ("review_outbound_messages", "portfolio", {"action": "list"}),
    ("get_autonomous_status", "portfolio", {}),
    ("list_available_workers", "portfolio", {}),
    ("get_worker_config", "one", {"worker_name": "churn_risk_monitor"}),
]

# One fixed object per placeholder: the SQL that finds it (demo data only).
OBJECTS = {
    "@T@": "SELECT min(ticket_id) FROM support_tickets WHERE client_id LIKE 'demo\\_%'",
    "@X@": "SELECT min(client_id) FROM accounts WHERE client_id LIKE 'demo\\_%' AND lifecycle_stage = 'churned'",
    "@P@": "SELECT min(client_id) FROM onboarding_plans WHERE client_id LIKE 'demo\\_%'",
    "@K@": "SELECT min(article_id) FROM kb_articles WHERE status = 'published'",
    "@E@": "SELECT min(ebr_id) FROM executive_reviews",
    "@A@": "SELECT min(advocate_id) FROM advocates",
    "@M@": "SELECT min(member_id) FROM community_members",
    "@CO@": "SELECT min(community_id) FROM communities",
    "@N@": "SELECT min(newsletter_id) FROM newsletters",
    "@S@": "SELECT min(campaign_id) FROM retention_campaigns",
    "@EM@": "SELECT min(campaign_id) FROM email_campaigns",
    "@PAR@": "SELECT min(parent_id) FROM account_parents",
    "@AC@": "SELECT min(client_id) FROM contracts WHERE status = 'active' AND client_id LIKE 'demo\\_%'",
}

# Objects the demo seed does not make: created once through the tool itself when missing (an
# e-mail campaign to one demo account, scheduled a year ahead, so nothing is ever sent).
OBJECT_SETUP = {
    "@EM@": "SELECT csmcp.tool_send_personalized_email(jsonb_build_object("
            "'campaign_name', 'bench_tools get_status', 'template_type', 'newsletter', "
            "'subject_line', 'Hello {{client_name}}', 'body_text', 'Benchmark campaign', "
            "'sender_email', 'cs@example.com', 'target_client_ids', jsonb_build_array('demo_00001'), "
            "'scheduled_send_time', now() + interval '365 days'), 'bench') ->> 'campaign_id'",
}

WRK_LUA = r"""
local tmpl = os.getenv("BENCH_BODY")
local n = tonumber(os.getenv("BENCH_ACCOUNTS"))
local sid = os.getenv("BENCH_SESSION")
local seq = 0
bad = 0
function init(args) math.randomseed(4242) end
function request()
  seq = seq + 1
  local acc = string.format("demo_%05d", math.random(1, n))
  local body = string.gsub(tmpl, "@C@", acc)
  body = string.gsub(body, "@ID@", tostring(seq))
  return wrk.format("POST", "/mcp", {["Content-Type"] = "application/json",
    ["Accept"] = "application/json, text/event-stream", ["MCP-Protocol-Version"] = "2025-11-25",
    ["Mcp-Session-Id"] = sid}, body)
end
function response(status, hdrs, body)
  if status ~= 200 or not string.find(body, '"result"', 1, true)
     or string.find(body, '"isError":true', 1, true) then
    bad = bad + 1
    if bad == 1 then io.stderr:write("first bad answer: " .. string.sub(body, 1, 400) .. "\n") end
  end
end
function done(summary, latency, requests)
  io.write(string.format('RESULT {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"bad":%d,' ..
    '"errors":%d}\n', summary.requests, summary.duration, latency:percentile(50),
    latency:percentile(99), bad, summary.errors.connect + summary.errors.read +
    summary.errors.write + summary.errors.timeout + summary.errors.status))
end
"""


def loadavg():
    with open("/proc/loadavg") as f:
        return f.read().split()[0]


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, int(round(q * len(xs) + 0.5)) - 1))] if xs else 0


def pgbench_bin():
    p = os.path.join(lib.pg_bindir(), "pgbench")
    return p if os.path.exists(p) else shutil.which("pgbench")


CONNECTIONS = 1


def run_wrk(port, sid, body, accounts, duration, tmp):
    script = os.path.join(tmp, "bench.lua")
    with open(script, "w") as f:
        f.write(WRK_LUA)
    env = dict(os.environ, BENCH_BODY=body, BENCH_ACCOUNTS=str(accounts), BENCH_SESSION=sid)
    r = subprocess.run(["wrk", "-t1", "-c%d" % CONNECTIONS, "-d", "%ds" % duration, "-s", script,
                        "http://127.0.0.1:%d/mcp" % port], env=env, capture_output=True,
                       text=True, timeout=duration + 60)
    m = re.search(r"^RESULT (\{.*\})$", r.stdout, re.M)
    if not m:
        raise RuntimeError("wrk: no RESULT\n%s\n%s" % (r.stdout, r.stderr))
    res = json.loads(m.group(1))
    res["rps"] = res["requests"] / (res["duration_us"] / 1e6)
    res["stderr"] = r.stderr.strip()
    return res


SLOW_CALLS = 3


def run_session(port, name, args, n):
    s = lib.McpSession(port)   # a fresh connection: the bench's own went idle during wrk/pgbench
    try:
        return run_session_calls(s, name, args, n)
    finally:
        s.close()


def run_session_calls(s, name, args, n):
    lat = []
    t0 = time.monotonic()
    bad = 0
    for _ in range(n):
        t = time.monotonic()
        r = s.call_tool(name, args)
        lat.append(int((time.monotonic() - t) * 1e6))
        bad += 1 if r.get("isError") else 0
    el = time.monotonic() - t0
    return {"requests": n, "duration_us": int(el * 1e6), "p50_us": pct(lat, 0.5), "p99_us": pct(lat, 0.99),
            "bad": bad, "errors": 0, "rps": n / el, "stderr": "(%d sequential calls)" % n}


def run_pgbench(url, sql, duration, tmp, count=None):
    script = os.path.join(tmp, "bench.sql")
    with open(script, "w") as f:
        f.write(sql)
    for x in os.listdir(tmp):
        if x.startswith("txn"):
            os.unlink(os.path.join(tmp, x))
    run = ["-T", str(duration)] if count is None else ["-t", str(count)]
    r = subprocess.run([pgbench_bin(), "-n", "-M", "prepared", "-c", str(CONNECTIONS),
                        "-j", str(min(CONNECTIONS, 2))] + run +
                       ["-f", script, "-l", "--log-prefix", os.path.join(tmp, "txn"), url],
                       capture_output=True, text=True, timeout=(duration or 0) + 600, cwd=tmp)
    lat = []
    for x in os.listdir(tmp):
        if x.startswith("txn"):
            with open(os.path.join(tmp, x)) as f:
                lat += [int(line.split()[2]) for line in f if len(line.split()) >= 3]
    tps = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", r.stdout)
    return {"tps": float(tps.group(1)) if tps else 0.0, "p50_us": pct(lat, 0.50),
            "p99_us": pct(lat, 0.99), "calls": len(lat),
            "errors": 0 if r.returncode == 0 else 1, "stderr": r.stderr.strip()[-300:]}


def measure(d, sid, body, sql, text, name, accounts, dur, url, tmp):
    w = run_wrk(d.port, sid, body, accounts, dur, tmp)
    if w["requests"] < 3:
        # slower than duration / 3 per call: wrk ends before answers arrive; time a few
        # sequential calls instead (same arguments, fixed account 1)
        w = run_session(d.port, name, json.loads(text.replace("@C@", "demo_00001")), SLOW_CALLS)
    p = run_pgbench(url, sql, dur, tmp)
    if p["calls"] < 3:
        p = run_pgbench(url, sql, None, tmp, count=SLOW_CALLS)
    return w, p


def read_tools():
    """Names of the registered tools with a read call, from the build's inventory."""
    inv = os.path.join(lib.BUILD, "worker", "tools_inventory.json")
    with open(inv) as f:
        tools = json.load(f)["tools"]
    return sorted(t["name"] for t in tools if not t["fixture"] and (
        t["scope"] == "read" or "read" in t["action_scopes"].values()))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--duration", type=int, default=2)
    ap.add_argument("--only", default=None, help="regex over tool names")
    ap.add_argument("--shape", choices=("one", "portfolio"), default=None)
    ap.add_argument("--json", default=None)
    ap.add_argument("--audit", choices=("on", "off"), default="on",
                    help="audit.enabled of the csmcpd under test (on = production default: a call "
                         "is answered once its audit record is durable)")
    ap.add_argument("--connections", type=int, default=1,
                    help="concurrent callers on each side (wrk -cN, pgbench -cN)")
    ap.add_argument("--workers", type=int, default=1, help="csmcpd workers")
    ap.add_argument("--no-warmup", action="store_true",
                    help="no untimed call of each case before measuring it")
    a = ap.parse_args()
    dur = max(1, min(a.duration, 10))
    global CONNECTIONS
    CONNECTIONS = max(1, min(a.connections, 64))
    url = lib.database_url()
    accounts = int(lib.psql(url, "SELECT count(*) FROM accounts WHERE client_id ~ '^demo_[0-9]+$'"))
    if accounts < 1:
        sys.exit("no demo accounts: csmcpctl seed --accounts N first")
    covered = {c[0] for c in CASES}
    missing = [t for t in read_tools() if t not in covered]
    objs = {}
    for k, q in OBJECTS.items():
        try:
            objs[k] = lib.psql(url, q) or None
        except AssertionError:
            objs[k] = None
        if not objs[k] and k in OBJECT_SETUP:
            objs[k] = lib.psql(url, OBJECT_SETUP[k]) or None
            print("# created %s = %s (the demo seed has none)" % (k, objs[k]))
    workers = max(1, min(a.workers, 8))
    d = lib.Csmcpd(workers=workers, conf={"ratelimit": {"enabled": False},
                                          "log": {"level": "warning"},
                                          "audit": {"enabled": a.audit == "on"},
                                          "database": {"url": url,
                                                       "pool_size": max(4, CONNECTIONS)}}).start()
    rows = []
    fails = 0
    try:
        s = lib.McpSession(d.port)
        sid = s.session_id
        tmp = tempfile.mkdtemp(prefix="bench-tools-")
        print("# %d demo accounts; csmcpd %d worker(s) (auth off, rate limit off, audit %s), wrk -c%d "
              "vs pgbench -c%d -M prepared, %d s each; load average at the start of each line"
              % (accounts, workers, a.audit, CONNECTIONS, CONNECTIONS, dur))
        print("%-34s %-9s %-44s %8s %8s %8s %8s %8s %8s %6s %5s" % (
            "tool", "shape", "arguments", "p50 ms", "p99 ms", "calls/s", "pg p50", "pg p99",
            "pg c/s", "ratio", "load"))
        # warm-up (not counted): the worker's first calls pay its pool connections and plans
        run_wrk(d.port, sid, '{"jsonrpc":"2.0","id":@ID@,"method":"tools/call","params":{"name":'
                '"get_client_overview","arguments":{"client_id":"@C@"}}}', accounts, 1, tmp)
        for name, shape, args in CASES:
            if a.only and not re.search(a.only, name):
                continue
            if a.shape and shape != a.shape:
                continue
            text = json.dumps(args, separators=(",", ":"))
            skip = [k for k in OBJECTS if k in text and not objs.get(k)]
            if skip:
                print("%-34s %-9s %-44s no demo object for %s" % (name, shape, text[:44], skip))
                fails += 1  # a case that cannot run is not a pass
                continue
            for k, v in objs.items():
                if v:
                    text = text.replace(k, v)
            la = loadavg()
            body = ('{"jsonrpc":"2.0","id":@ID@,"method":"tools/call","params":{"name":"%s",'
                    '"arguments":%s}}' % (name, text))
            sql = ("\\set a random(1, %d)\n"
                   "SELECT csmcp.tool_%s(replace($$%s$$, '@C@', 'demo_' || lpad(:a::text, "
                   "greatest(5, length(:a::text)), '0'))::jsonb, 'bench') IS NOT NULL;\n"
                   % (accounts, name, text))
            if not a.no_warmup:
                t0 = time.monotonic()
                lib.psql(url, "SELECT csmcp.tool_%s($$%s$$::jsonb, 'bench') IS NOT NULL"
                         % (name, text.replace("@C@", "demo_00001")), timeout=600)
                if time.monotonic() - t0 > 1:
                    print("# warm-up call of %s %s: %.1f s" % (name, text[:44], time.monotonic() - t0),
                          flush=True)
            try:
                w, p = measure(d, sid, body, sql, text, name, accounts, dur, url, tmp)
            except Exception as e:  # one broken case must not lose the table
                fails += 1
                print("%-34s %-9s %-44s failed: %s" % (name, shape, text[:44], e), flush=True)
                continue
            ratio = w["rps"] / p["tps"] if p["tps"] else 0
            err = w["bad"] + w["errors"] + p["errors"]
            fails += 1 if err else 0
            row = {"tool": name, "shape": shape, "args": args, "p50_ms": w["p50_us"] / 1000,
                   "p99_ms": w["p99_us"] / 1000, "calls_s": w["rps"], "calls": w["requests"],
                   "pg_p50_ms": p["p50_us"] / 1000, "pg_p99_ms": p["p99_us"] / 1000,
                   "pg_calls_s": p["tps"], "ratio": ratio, "errors": err, "load": float(la),
                   "over_bar": w["p99_us"] / 1000 > (50 if shape == "one" else 250)}
            rows.append(row)
            print("%-34s %-9s %-44s %8.1f %8.1f %8.1f %8.1f %8.1f %8.1f %6.2f %5s%s%s" % (
                name, shape, json.dumps(args)[:44], row["p50_ms"], row["p99_ms"], row["calls_s"],
                row["pg_p50_ms"], row["pg_p99_ms"], row["pg_calls_s"], ratio, la,
                "  OVER" if row["over_bar"] else "",
                ("  ERRORS %d %s %s" % (err, w["stderr"][:200], p["stderr"][:200])) if err else ""),
                flush=True)
        s.close()
        shutil.rmtree(tmp, ignore_errors=True)
    finally:
        d.stop()
    for t in missing:
        print("MISSING: no case for %s" % t)
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"accounts": accounts, "duration_s": dur, "connections": CONNECTIONS,
                       "workers": workers, "audit": a.audit, "rows": rows, "missing": missing},
                      f, indent=1)
    return 1 if fails or missing else 0


if __name__ == "__main__":
    sys.exit(main())
