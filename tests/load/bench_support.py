#!/usr/bin/python3
"""bench_support.py - per-tool latency of the six support & self-service tools (issue 12).

Starts csmcpd (auth and rate limits off) on the database of CSMCP_DATABASE_URL (seed it first:
`csmcpctl seed --accounts 10000`), opens one MCP session, and calls each tool/action --n times
in turn (sequential: the figure is the latency of one call, not throughput), printing p50/p99
per line. Writes go to one demo account and are real (tickets created, routed, resolved).

usage: CSMCP_DATABASE_URL=... CSMCP_REDIS_URL=... tests/load/bench_support.py [--n 200]
"""
import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import lib  # noqa: E402


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--client", default="demo_00042")
    a = ap.parse_args()
    n = max(5, min(a.n, 5000))
    d = lib.Csmcpd(workers=2, conf={"ratelimit": {"enabled": False}}).start()
    s = d.session()
    created = []
    try:
        c = a.client
        base = {"action": "create", "client_id": c, "subject": "Bench ticket", "description": "bench",
                "requester_email": "bench@cust.example.com", "requester_name": "Bench", "priority": "P3"}

        def new_ticket():
            r = s.call_ok("handle_support_ticket", base)
            created.append(r["ticket_id"])
            return r["ticket_id"]
        state = {"k": 0}

        def next_created():
            state["k"] += 1
            return created[state["k"] % len(created)]
        cases = [
            ("handle_support_ticket create", lambda: new_ticket()),
            ("handle_support_ticket get", lambda: s.call_ok("handle_support_ticket", {"action": "get", "ticket_id": created[0]})),
            ("handle_support_ticket list (client)", lambda: s.call_ok("handle_support_ticket", {"action": "list", "client_id": c})),
            ("handle_support_ticket list (all, sla_state)", lambda: s.call_ok("handle_support_ticket", {"action": "list", "sla_state": "at_risk"})),
            ("handle_support_ticket add_comment", lambda: s.call_ok("handle_support_ticket", {
                "action": "add_comment", "ticket_id": next_created(), "author_email": "bench@support.example.com",
                "internal_notes": "bench note"})),
            ("handle_support_ticket update", lambda: s.call_ok("handle_support_ticket", {
                "action": "update", "ticket_id": next_created(), "tags": ["bench", str(time.monotonic_ns())]})),
            ("route_tickets manual (options)", lambda: s.call_ok("route_tickets", {"routing_strategy": "manual", "ticket_id": created[0]})),
            ("route_tickets auto (queue)", lambda: s.call_ok("route_tickets", {"routing_strategy": "auto"})),
            ("manage_knowledge_base search", lambda: s.call_ok("manage_knowledge_base", {"search_query": "how to update billing"})),
            ("manage_knowledge_base get", lambda: s.call_ok("manage_knowledge_base", {"action": "get", "article_id": "KB-1050", "client_id": c})),
            ("manage_knowledge_base recommend (client)", lambda: s.call_ok("manage_knowledge_base", {"action": "recommend", "client_id": c})),
            ("manage_knowledge_base analytics", lambda: s.call_ok("manage_knowledge_base", {"action": "analytics"})),
            ("update_knowledge_base vote", lambda: s.call_ok("update_knowledge_base", {"article_id": "KB-1050", "action": "vote", "helpful_vote": True})),
            ("manage_customer_portal get_status", lambda: s.call_ok("manage_customer_portal", {"client_id": c})),
            ("manage_customer_portal get_activity", lambda: s.call_ok("manage_customer_portal", {"client_id": c, "action": "get_activity"})),
            ("manage_customer_portal list_resources", lambda: s.call_ok("manage_customer_portal", {"client_id": c, "action": "list_resources"})),
        ] + [("analyze_support_performance %s" % t, (lambda t=t: s.call_ok("analyze_support_performance", {"analysis_type": t})))
             for t in ("overview", "sla", "agent", "satisfaction", "knowledge_base", "trends", "comparison")] + [
            ("analyze_support_performance overview (client)", lambda: s.call_ok("analyze_support_performance", {"client_id": c})),
        ]
        print("%-48s %8s %8s %8s" % ("tool / action", "n", "p50 ms", "p99 ms"))
        for name, fn in cases:
            fn()  # warm-up (and the first created ticket)
            xs = []
            for _ in range(n if "analyze" not in name and "auto" not in name else max(5, n // 4)):
                t0 = time.perf_counter()
                fn()
                xs.append((time.perf_counter() - t0) * 1000)
            print("%-48s %8d %8.1f %8.1f" % (name, len(xs), pct(xs, 50), pct(xs, 99)), flush=True)
    finally:
        for tid in created:
            try:
                s.call_tool("handle_support_ticket", {"action": "resolve", "ticket_id": tid, "resolution_notes": "bench done"})
            except Exception:  # noqa: BLE001 - best effort clean-up of the bench's own tickets
                pass
        s.close()
        d.stop()


if __name__ == "__main__":
    main()
