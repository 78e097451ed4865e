// expansion_sdk_workflow.mjs - the expansion & revenue workflow through the official TypeScript
// SDK client: an account whose seats are nearly full -> identify_upsell_opportunities lists it
// with the documented probability -> track_renewals -> forecast_renewals -> negotiate_renewals,
// with exact values. The SDK validates every structuredContent against the tool's outputSchema.
// usage: node expansion_sdk_workflow.mjs URL SDK_ESM_DIR CLIENT_ID   prints "N passed, N failed"
// The account (prepared by test_tools_expansion_sdk.py): standard tier, health 88, contract
// 40000 / 20 seats renewing in 30 days, 19 daily active users over the last 30 days (0.95).
import { pathToFileURL } from "node:url";
import path from "node:path";

const url = new URL(process.argv[2]);
const sdk = process.argv[3];
const clientId = process.argv[4];
const { Client } = await import(pathToFileURL(path.join(sdk, "client", "index.js")).href);
const { StreamableHTTPClientTransport } = await import(
  pathToFileURL(path.join(sdk, "client", "streamableHttp.js")).href);

let passed = 0, failed = 0;
async function check(name, fn) {
  try {
    await fn();
    passed++;
    console.log(`ok   ${name}`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${name}: ${e && e.stack ? e.stack : e}`);
  }
}
function assert(cond, msg) { if (!cond) throw new Error(msg); }
function canon(v) {
  if (Array.isArray(v)) return `[${v.map(canon).join(",")}]`;
  if (v && typeof v === "object") return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canon(v[k])}`).join(",")}}`;
  return JSON.stringify(v);
}
function eq(a, b, what) {
  if (canon(a) !== canon(b)) throw new Error(`${what}: got ${canon(a)}, want ${canon(b)}`);
}
async function call(name, args) {
  const r = await client.callTool({ name, arguments: args });
  assert(!r.isError, `${name} failed: ${JSON.stringify(r.content)}`);
  assert(r.structuredContent, `${name}: no structuredContent`);
  assert(typeof r.structuredContent.summary === "string", `${name}: summary text`);
  return r.structuredContent;
}
const day = (n) => new Date(Date.now() + n * 86400000).toISOString().slice(0, 10);

const client = new Client({ name: "csmcp-expansion-workflow", version: "1.0.0" }, { capabilities: {} });
const transport = new StreamableHTTPClientTransport(url);

await check("connect and list the expansion tools", async () => {
  await client.connect(transport);
  let cursor, names = [];
  do {
    const r = await client.listTools(cursor ? { cursor } : {});
    names.push(...r.tools.map((t) => t.name));
    cursor = r.nextCursor;
  } while (cursor && names.length < 10000);
  for (const n of ["identify_upsell_opportunities", "track_renewals", "forecast_renewals", "negotiate_renewals"])
    assert(names.includes(n), `tool ${n} listed`);
});

let oppId;
await check("identify_upsell_opportunities: seats 95 % used, health 88 -> 0.75 high, x2.5", async () => {
  const r = await call("identify_upsell_opportunities", { client_id: clientId });
  eq(r.opportunities.length, 1, "one candidate");
  const o = r.opportunities[0];
  eq([o.current_tier, o.recommended_tier, o.multiplier, o.current_arr, o.potential_arr, o.expansion_value],
     ["standard", "professional", 2.5, 40000, 100000, 60000], "tier upgrade");
  eq([o.probability, o.probability_label, o.usage_rate], [0.75, "high", 0.95], "probability and utilisation");
  oppId = o.opportunity_id;
  const again = await call("identify_upsell_opportunities", { client_id: clientId });
  eq([again.opportunities[0].opportunity_id, again.opportunity_summary.opportunities_created], [oppId, 0], "idempotent");
});

await check("track_renewals: 30 days out, probability 0.92, reminders at 30/14/7 days", async () => {
  const r = await call("track_renewals", { client_id: clientId });
  eq(r.renewals.length, 1, "one renewal");
  const x = r.renewals[0];
  eq([x.renewal_date, x.days_until_renewal, x.current_arr, x.renewal_probability, x.timeframe, x.auto_renew],
     [day(30), 30, 40000, 0.92, "30_days", false], "renewal");
  eq(x.reminders_scheduled, [
    { type: "30_day_notice", date: day(0), status: "pending" },
    { type: "14_day_notice", date: day(16), status: "scheduled" },
    { type: "7_day_notice", date: day(23), status: "scheduled" }], "reminders");
  eq(x.expansion_opportunities, { count: 1, total_value: 60000 }, "open upsell shown");
});

await check("forecast_renewals: 0.92 x 40000 = 36800, band high, persisted", async () => {
  const r = await call("forecast_renewals", { client_id: clientId, forecast_period_days: 60 });
  eq([r.total_renewals, r.arr_up_for_renewal, r.forecast_arr, r.predicted_renewal_rate], [1, 40000, 36800, 0.92], "forecast");
  eq(r.by_band, { high: 1, medium: 0, at_risk: 0 }, "bands");
  eq(r.forecasts_persisted, 1, "persisted");
});

await check("negotiate_renewals: expansion bundle with the upsell, guardrails", async () => {
  const r = await call("negotiate_renewals", { client_id: clientId, negotiation_strategy: "expansion_bundle" });
  // base 40000 + 60000 = 100000; 10 % bundle -> 90000; 2/3-year capped at 15 % -> 85000
  eq(r.term_options.map((o) => o.annual_value), [90000, 85000, 85000], "options");
  eq(r.guardrails, { max_discount: 0.15, floor_arr: 34000, approval_required_below: 32000 }, "guardrails");
  eq(r.strategy.expansion_included.map((o) => o.opportunity_id), [oppId], "bundled opportunity");
  const v = await call("negotiate_renewals", { client_id: clientId, proposed_arr: 33000 });
  eq(v.proposal_check.status, "below_floor", "proposal check");
  eq(v.value_evidence.seat_utilisation_30d, 0.95, "evidence");
});

await transport.terminateSession().catch(() => {});
await client.close();
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
