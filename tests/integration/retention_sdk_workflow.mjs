// retention_sdk_workflow.mjs - the retention workflow through the official TypeScript SDK client:
// an account's usage falls -> calculate_health_score -> identify_churn_risk lists it ->
// execute_retention_campaign -> manage_escalations create/resolve/close -> score_risk_factors,
// with exact values. The SDK validates every structuredContent against the tool's outputSchema.
// usage: node retention_sdk_workflow.mjs URL SDK_ESM_DIR   prints "N passed, N failed"
import { start, check, assert, eq, call, finish } from "./sdk_lib.mjs";

const { client, transport } = await start("csmcp-retention-workflow");
const tag = "retwf" + Math.random().toString(16).slice(2, 10);
const dayAgo = (k) => new Date(Date.now() - k * 86400000).toISOString().slice(0, 10);
let clientId;

await check("connect and list the retention tools", async () => {
  await client.connect(transport);
  let cursor, names = [];
  do {
    const r = await client.listTools(cursor ? { cursor } : {});
    names.push(...r.tools.map((t) => t.name));
    cursor = r.nextCursor;
  } while (cursor && names.length < 10000);
  for (const n of ["identify_churn_risk", "execute_retention_campaign", "manage_escalations", "score_risk_factors",
                   "calculate_health_score", "ingest_usage_events", "register_client"])
    assert(names.includes(n), `tool ${n} listed`);
});

await check("register_client and its usage falling (10 users/day, then 1, then none for 10 days)", async () => {
  const r = await call("register_client", { client_name: `Retention ${tag}`, company_name: "Retention Inc",
                                            contract_value: 24000, licensed_seats: 10, tier: "standard" });
  clientId = r.client_id;
  const events = [];
  for (let k = 59; k >= 30; k--)
    for (let u = 0; u < 10; u++)
      events.push({ event_id: `${tag}-${k}-${u}`, client_id: clientId, user_id: `user${u}`,
                    occurred_at: `${dayAgo(k)}T12:00:00Z`, feature: "reports" });
  for (let k = 29; k >= 10; k--)
    events.push({ event_id: `${tag}-${k}-0`, client_id: clientId, user_id: "user0",
                  occurred_at: `${dayAgo(k)}T12:00:00Z`, feature: "reports" });
  const i = await call("ingest_usage_events", { events });
  eq([i.received, i.inserted], [320, 320], "ingested");
});

await check("calculate_health_score: usage 7, engagement 60 -> 53, high risk", async () => {
  const r = await call("calculate_health_score", { client_id: clientId });
  // usage round(100 * (20 user-days / 30) / 10) = 7; last use 10 days ago -> 60;
  // round(0.35*7 + 0.25*60 + 0.15*100 + 0.15*70 + 0.10*100) = round(52.95) = 53
  eq(r.component_scores, { usage: 7, engagement: 60, support: 100, satisfaction: 70, payment: 100 }, "components");
  eq([r.current_health_score, r.risk_level], [53, "high"], "score");
});

await check("identify_churn_risk lists it (below 60) with its interventions", async () => {
  const r = await call("identify_churn_risk", { limit: 1000 });
  const a = r.at_risk_customers.find((x) => x.client_id === clientId);
  assert(a, "account listed among the at-risk accounts");
  eq([a.health_score, a.risk_level, a.churn_probability, a.arr, a.at_risk], [53, "high", 0.47, 24000, true], "entry");
  eq(a.recommended_interventions.map((x) => x.component), ["usage", "engagement"], "interventions from the weakest components");
  const one = await call("identify_churn_risk", { client_id: clientId });
  eq([one.risk_summary.total_analyzed, one.risk_summary.at_risk_count, one.risk_summary.total_arr_at_risk], [1, 1, 24000], "one-account summary");
});

let campaignId;
await check("execute_retention_campaign: standard campaign, target 73, first action done", async () => {
  const r = await call("execute_retention_campaign", { client_id: clientId, campaign_type: "adoption_drive" });
  campaignId = r.campaign.campaign_id;
  assert(/^ret_[0-9]+$/.test(campaignId), campaignId);
  eq(r.campaign.actions.map((a) => a.action), ["executive_outreach", "value_review", "success_planning"], "actions");
  eq([r.campaign.targets.health_score_at_launch, r.campaign.targets.target_health_score], [53, 73], "targets");
  const d = await call("execute_retention_campaign", { action: "complete_action", campaign_id: campaignId,
                                                       action_id: r.campaign.actions[0].action_id });
  eq([d.campaign.outcome.actions_done, d.campaign.outcome.health_change, d.campaign.outcome.status], [1, 0, "in_progress"], "outcome");
});

await check("manage_escalations: create (critical, 4 h) -> resolve (SLA met) -> close", async () => {
  const c = await call("manage_escalations", { action: "create", client_id: clientId, severity: "critical",
                                               summary: "Usage collapsed after the reorg" });
  const id = c.escalation.escalation_id;
  eq([c.escalation.status, c.escalation.sla_resolution_hours, c.escalation.sla.state], ["open", 4, "on_track"], "created");
  const early = await client.callTool({ name: "manage_escalations", arguments: { action: "close", escalation_id: id } });
  assert(early.isError, "closing an open escalation is refused");
  const r = await call("manage_escalations", { action: "resolve", escalation_id: id, resolution: "Exec sponsor call held" });
  eq([r.escalation.status, r.escalation.sla.state], ["resolved", "met"], "resolved");
  const x = await call("manage_escalations", { action: "close", escalation_id: id });
  eq(x.escalation.status, "closed", "closed");
  const l = await call("manage_escalations", { action: "list", client_id: clientId });
  eq([l.total_count, l.counts.by_status.closed, l.counts.by_sla_state.met], [1, 1, 1], "listed");
});

await check("score_risk_factors: usage 93, engagement 40, satisfaction 30 -> 36, medium, 0.36", async () => {
  const r = await call("score_risk_factors", { client_id: clientId });
  const f = Object.fromEntries(r.risk_factors.map((x) => [x.factor, x.risk_score]));
  eq(f, { usage_decline: 93, engagement_low: 40, support_volume: 0, payment_health: 0, satisfaction: 30,
          contract_health: 0 }, "factor risks");
  // 0.25*93 + 0.20*40 + 0.15*30 = 23.25 + 8 + 4.5 = 35.75
  eq([r.overall_risk_score, r.risk_level, r.churn_probability], [36, "medium", 0.36], "overall");
  assert(/^RA-[0-9]+$/.test(r.assessment_id), r.assessment_id);
});

await finish();
