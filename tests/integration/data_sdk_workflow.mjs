// data_sdk_workflow.mjs - the data workflow through the official TypeScript SDK client:
// register -> ingest usage -> calculate health -> overview -> list with filters -> timeline,
// with exact values. The SDK validates every structuredContent against the tool's outputSchema.
// usage: node data_sdk_workflow.mjs URL SDK_ESM_DIR   prints "N passed, N failed"
import { start, check, assert, eq, call, finish } from "./sdk_lib.mjs";

const { client, transport } = await start("csmcp-data-workflow");
const tag = "sdkwf" + Math.random().toString(16).slice(2, 10);
const today = new Date().toISOString().slice(0, 10);
const yesterday = new Date(Date.now() - 86400000).toISOString().slice(0, 10);
let clientId;

await check("connect and list tools (the SDK keeps the output schemas)", async () => {
  await client.connect(transport);
  let cursor, names = [];
  do {
    const r = await client.listTools(cursor ? { cursor } : {});
    names.push(...r.tools.map((t) => t.name));
    cursor = r.nextCursor;
  } while (cursor && names.length < 10000);
  for (const n of ["register_client", "ingest_usage_events", "calculate_health_score",
                   "get_client_overview", "list_clients", "get_client_timeline"])
    assert(names.includes(n), `tool ${n} listed`);
});

await check("register_client", async () => {
  const r = await call("register_client", { client_name: `Workflow ${tag}`, company_name: "Workflow Inc",
                                            contract_value: 24000, licensed_seats: 10, tier: "standard" });
  clientId = r.client_id;
  assert(/^cs_[0-9]+_workflow_/.test(clientId), clientId);
  eq(r.summary.days_until_renewal, 365, "days_until_renewal");
});

await check("ingest_usage_events (6 users today and yesterday, retried batch is idempotent)", async () => {
  const events = [];
  for (const day of [today, yesterday])
    for (let u = 0; u < 6; u++)
      events.push({ event_id: `${tag}-${day}-${u}`, client_id: clientId, user_id: `user${u}`,
                    occurred_at: `${day}T00:00:01Z`, feature: "reports" });
  const r = await call("ingest_usage_events", { events });
  eq([r.received, r.inserted, r.duplicates], [12, 12, 0], "first batch");
  const again = await call("ingest_usage_events", { events });
  eq([again.inserted, again.duplicates], [0, 12], "retried batch");
});

let score;
await check("calculate_health_score (usage 4, engagement 95, support 100, satisfaction 70, payment 100)", async () => {
  const r = await call("calculate_health_score", { client_id: clientId });
  // usage round(100 * (12 user-days / 30) / 10 seats) = 4; score round(1.4 + 23.75 + 15 + 10.5 + 10) = 61
  eq(r.component_scores, { usage: 4, engagement: 95, support: 100, satisfaction: 70, payment: 100 }, "components");
  eq([r.current_health_score, r.risk_level, r.health_trend], [61, "high", "stable"], "score");
  score = r.current_health_score;
});

await check("get_client_overview", async () => {
  const o = await call("get_client_overview", { client_id: clientId });
  eq([o.health.current_score, o.usage.events_30d, o.contract.annual_value, o.contract.licensed_seats],
     [score, 12, 24000, 10], "overview figures");
  eq(o.usage.top_features_30d[0], { feature_id: "reports", events: 12 }, "top feature");
});

await check("list_clients with filters", async () => {
  const l = await call("list_clients", { search: tag, tier_filter: "standard", health_score_min: 60 });
  eq([l.pagination.total_count, l.clients[0].client_id, l.clients[0].health_score], [1, clientId, score], "list");
  const none = await call("list_clients", { search: tag, health_score_min: 62 });
  eq(none.pagination.total_count, 0, "filtered out");
});

await check("get_client_timeline", async () => {
  const t = await call("get_client_timeline", { client_id: clientId, event_types: ["account", "lifecycle", "health", "usage"] });
  const types = new Set(t.timeline.map((e) => e.event_type));
  for (const k of ["account", "lifecycle", "health", "usage"]) assert(types.has(k), `timeline has ${k}`);
  assert(t.timeline.some((e) => e.title === "register_client"), "registration recorded");
  assert(t.timeline.some((e) => e.title === `Health score ${score} (stable)`), "health calculation recorded");
});

await finish();
