// support_sdk_workflow.mjs - the support workflow through the official TypeScript SDK client:
// register a client -> create a P2 ticket -> route it (manual, to the fixture agent) -> agent
// comment (first response) -> escalate (P1) -> resolve -> rate -> close -> performance report,
// with exact values. The SDK validates every structuredContent against the tool's outputSchema.
// usage: node support_sdk_workflow.mjs URL SDK_ESM_DIR AGENT_ID TEAM   prints "N passed, N failed"
import { start, check, assert, eq, call as sdkCall, refused, finish } from "./sdk_lib.mjs";

const { client, transport, args } = await start("csmcp-support-workflow");
const [agent, team] = args;  // team: the fixture agent's team, unique to this run
// Every support tool but register_client answers with a summary line.
async function call(name, args) {
  const r = await sdkCall(name, args);
  assert(typeof r.summary === "string" || name === "register_client", `${name}: no summary`);
  return r;
}
const tag = "supwf" + Math.random().toString(16).slice(2, 10);
let clientId, ticketId;

await check("connect and list the support tools", async () => {
  await client.connect(transport);
  let cursor, names = [];
  do {
    const r = await client.listTools(cursor ? { cursor } : {});
    names.push(...r.tools.map((t) => t.name));
    cursor = r.nextCursor;
  } while (cursor && names.length < 10000);
  for (const n of ["handle_support_ticket", "route_tickets", "manage_knowledge_base", "update_knowledge_base",
                   "manage_customer_portal", "analyze_support_performance"])
    assert(names.includes(n), `tool ${n} listed`);
});

await check("register a client", async () => {
  const r = await call("register_client", { client_name: `Support ${tag}`, company_name: "Support WF Inc", tier: "standard" });
  clientId = r.client_id;
});

await check("create a P2 ticket", async () => {
  const r = await call("handle_support_ticket", { action: "create", client_id: clientId, subject: "Reports time out",
    description: "The monthly report times out after 60 s", requester_email: "ops@supwf.example.com",
    requester_name: "Ops Lead", priority: "P2", category: "performance" });
  ticketId = r.ticket_id;
  assert(/^TKT-[0-9]+$/.test(ticketId), ticketId);
  eq(r.sla_targets, { priority: "P2", first_response_minutes: 60, resolution_minutes: 1440 }, "sla_targets");
  eq([r.routing.assigned_team, r.ticket.status, r.ticket.sla.state], ["Technical Support", "open", "on_track"], "routing");
});

await check("route it (manual: options, then assign)", async () => {
  const opts = await call("route_tickets", { routing_strategy: "manual", ticket_id: ticketId, team_filter: team });
  eq(opts.routing_options.map((o) => [o.agent_id, o.expertise_match, o.current_tickets]), [[agent, true, 0]], "options");
  eq(opts.recommendation.agent_id, agent, "recommendation");
  const r = await call("route_tickets", { routing_strategy: "manual", ticket_id: ticketId, agent_id: agent });
  eq(r.routing_results.map((x) => [x.ticket_id, x.assigned_to]), [[ticketId, agent]], "assigned");
});

await check("agent comment is the first response", async () => {
  const r = await call("handle_support_ticket", { action: "add_comment", ticket_id: ticketId,
    customer_visible_notes: "We can reproduce it and are on it." });
  eq([r.comment.author_type, r.comment.first_response, r.ticket.sla.first_response.state], ["agent", true, "met"], "first response");
});

await check("close before resolving is refused", async () => {
  await refused("handle_support_ticket", { action: "close", ticket_id: ticketId }, "only a resolved ticket can be closed");
});

await check("escalate P2 -> P1", async () => {
  const r = await call("handle_support_ticket", { action: "escalate", ticket_id: ticketId, escalation_reason: "Quarter close blocked" });
  eq([r.escalation.from_priority, r.escalation.to_priority, r.ticket.assigned_team], ["P2", "P1", "Escalation Team"], "escalation");
  eq([r.ticket.sla.first_response.target_minutes, r.ticket.sla.resolution.target_minutes], [15, 240], "re-targeted");
});

await check("resolve, rate, close", async () => {
  let r = await call("handle_support_ticket", { action: "resolve", ticket_id: ticketId, resolution_notes: "Query plan fixed" });
  eq([r.ticket.status, r.resolution.resolution_sla], ["resolved", "met"], "resolved");
  r = await call("handle_support_ticket", { action: "rate", ticket_id: ticketId, satisfaction_rating: 5, satisfaction_comment: "fast" });
  eq(r.satisfaction.rating, 5, "rating");
  r = await call("handle_support_ticket", { action: "close", ticket_id: ticketId });
  eq(r.ticket.status, "closed", "closed");
});

await check("performance report shows it", async () => {
  const r = await call("analyze_support_performance", { client_id: clientId, period_days: 7 });
  const m = r.metrics;
  eq([m.tickets_created, m.tickets_resolved, m.tickets_escalated, m.escalation_rate], [1, 1, 1, 1], "volume");
  eq([m.first_response.met, m.first_response.breached, m.resolution.met, m.resolution.breached, m.sla_compliance], [1, 0, 1, 0, 1], "sla");
  eq([m.csat, m.ratings, m.response_rate], [5, 1, 1], "csat");
  eq(r.open_now.open, 0, "open now");
  eq(r.recommendations.map((x) => x.rule), ["escalation_rate > 0.1"], "recommendations");
  const sla = await call("analyze_support_performance", { client_id: clientId, period_days: 7, analysis_type: "sla" });
  assert(sla.recommendations.some((x) => x.rule === "sla_compliance > 0.98"), "review SLA hint");
});

await finish();
