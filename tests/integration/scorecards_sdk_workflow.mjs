// scorecards_sdk_workflow.mjs - the scorecards workflow (issue 24) through the official TypeScript
// SDK client: two accounts registered -> resolve_account finds one from a typo -> a 2-measure
// scorecard for their industry -> calculate_health_score uses it -> explain_health_score adds up ->
// override_health_score makes an override the effective score in list_clients and
// prioritize_portfolio -> manage_account_hierarchy roll-up -> an e-mail waits for approval and is
// edited and approved with review_outbound_messages -> the override is cleared. Exact values; the
// SDK validates every structuredContent against the tool's outputSchema.
// usage: node scorecards_sdk_workflow.mjs URL SDK_ESM_DIR   prints "N passed, N failed"
// (test_tools_scorecards_sdk.py turns on approval for sendgrid before running it.)
import { start, check, assert, eq, call, refused, finish } from "./sdk_lib.mjs";

const { client, transport } = await start("csmcp-scorecards-workflow");
const tag = "scwf" + Math.random().toString(16).slice(2, 10);
const industry = `Scwf ${tag}`;
const csm = `Csm ${tag}`;
const inDays = (k) => new Date(Date.now() + k * 86400000).toISOString().slice(0, 19) + "Z";
let a, b, scorecardId, messageId;

await check("connect and list the scorecards tools", async () => {
  await client.connect(transport);
  let cursor, names = [];
  do {
    const r = await client.listTools(cursor ? { cursor } : {});
    names.push(...r.tools.map((t) => t.name));
    cursor = r.nextCursor;
  } while (cursor && names.length < 10000);
  for (const n of ["manage_health_scorecards", "override_health_score", "explain_health_score", "find_health_movers",
                   "prioritize_portfolio", "manage_account_hierarchy", "resolve_account", "review_outbound_messages"])
    assert(names.includes(n), `tool ${n} listed`);
});

await check("register two accounts of one industry and CSM", async () => {
  a = (await call("register_client", { client_name: `Scorewf Alpha ${tag}`, company_name: `Alpha ${tag} Ltd`,
                                       industry, csm_assigned: csm, contract_value: 20000, licensed_seats: 10,
                                       primary_contact_email: `ada@alpha-${tag}.test`,
                                       primary_contact_name: "Ada Alpha", tier: "standard" })).client_id;
  b = (await call("register_client", { client_name: `Scorewf Beta ${tag}`, company_name: `Beta ${tag} Ltd`,
                                       industry, csm_assigned: csm, contract_value: 10000, licensed_seats: 5,
                                       tier: "standard" })).client_id;
});

await check("resolve_account: a typo finds the account first", async () => {
  const r = await call("resolve_account", { query: `scorewf alpah ${tag}` });
  eq([r.matches[0].client_id, r.matches[0].matched_field], [a, "client_name"], "best match");
  assert(r.matches[0].similarity > 0.5, `similarity ${r.matches[0].similarity}`);
});

await check("manage_health_scorecards: a 2-measure scorecard for the industry", async () => {
  const r = await call("manage_health_scorecards", { action: "create", name: `Scwf ${tag}`,
                                                     weights: { usage: 0.5, support: 0.5 },
                                                     criteria: { industry }, priority: 1 });
  scorecardId = r.scorecard.scorecard_id;
  eq([r.scorecard.version, r.scorecard.status, r.scorecard.missing_input_policy], [1, "active", "neutral"], "created");
  const l = await call("manage_health_scorecards", { action: "list" });
  assert(l.available_measures.some((m) => m.measure === "nps_average" && m.kind === "catalogue"), "catalogue listed");
});

await check("calculate_health_score uses it: usage 0 (no users on 10 seats), support 100 -> 50", async () => {
  for (const id of [a, b]) {
    const r = await call("calculate_health_score", { client_id: id });
    eq([r.current_health_score, r.scorecard.scorecard_id, r.scorecard.version], [50, scorecardId, 1], `score of ${id}`);
  }
});

await check("explain_health_score: contributions add up to the score", async () => {
  const r = await call("explain_health_score", { client_id: a });
  eq([r.scoring_model, r.scorecard.scorecard_id, r.computed_score, r.grading.label], ["scorecard", scorecardId, 50, "high"], "explained");
  const c = Object.fromEntries(r.measures.map((m) => [m.measure, m.contribution]));
  eq([c.usage, c.support, c.engagement], [0, 50, 0], "contributions");
  eq(r.measures.reduce((s, m) => s + m.contribution, 0), r.score_before_rounding, "sum");
});

await check("override_health_score: 85 is the effective score in list_clients, the computed 50 beside it", async () => {
  const r = await call("override_health_score", { action: "set", client_id: a, score: 85,
                                                  reason: "renewal signed verbally", expires_at: inDays(10) });
  eq([r.effective_score, r.computed_score, r.override.days_remaining], [85, 50, 9], "override");
  const l = await call("list_clients", { industry_filter: industry, sort_by: "health_score", sort_order: "desc" });
  eq(l.clients.map((c) => [c.client_id, c.health_score, c.computed_health_score, c.health_overridden]),
     [[a, 85, 50, true], [b, 50, 50, false]], "list");
  eq(l.summary.average_health_score, 67.5, "average of the effective scores");
});

await check("prioritize_portfolio: B (10000 x 0.50 = 5000) before A (20000 x 0.15 = 3000)", async () => {
  const r = await call("prioritize_portfolio", { csm_assigned: csm });
  eq(r.accounts.map((x) => [x.client_id, x.priority_score, x.effective_score, x.churn_probability]),
     [[b, 5000, 50, 0.5], [a, 3000, 85, 0.15]], "worklist");
  eq([r.total, r.total_priority], [2, 8000], "totals");
});

await check("manage_account_hierarchy: B under A, roll-up", async () => {
  await call("manage_account_hierarchy", { action: "set_parent", client_id: b, parent_id: a });
  await refused("manage_account_hierarchy", { action: "set_parent", client_id: a, parent_id: b }, "cycle");
  const r = await call("manage_account_hierarchy", { action: "rollup", client_id: a });
  eq([r.rollup.descendants, r.rollup.arr, r.rollup.licensed_seats, r.rollup.health_score, r.rollup.own_effective_health_score],
     [1, 10000, 5, 50, 85], "rollup");
});

await check("send_personalized_email waits in pending_approval; edit then approve", async () => {
  await call("send_personalized_email", { campaign_name: `Scwf ${tag}`, template_type: "custom",
                                          subject_line: "Hello {{first_name}}", body_text: "Dear {{contact_name}}",
                                          sender_email: "cs@scwf.test", target_client_ids: [a], send_immediately: true });
  const l = await call("review_outbound_messages", { action: "list", client_id: a });
  eq(l.messages.map((m) => [m.state, m.subject, m.body, m.recipients]),
     [["pending_approval", "Hello Ada", "Dear Ada Alpha", [`ada@alpha-${tag}.test`]]], "queue");
  messageId = l.messages[0].message_id;
  const e = await call("review_outbound_messages", { action: "edit", message_id: messageId, body: "Dear Ada, thank you" });
  eq([e.message.state, e.message.body, e.message.edited], ["pending_approval", "Dear Ada, thank you", true], "edited");
  const ok = await call("review_outbound_messages", { action: "approve", message_id: messageId });
  eq([ok.message.state, ok.message.delivery_state], ["approved", "queued"], "approved");
  await refused("review_outbound_messages", { action: "reject", message_id: messageId, reason: "too late" },
                "already approved");
});

await check("clear the override: the computed score is back", async () => {
  const r = await call("override_health_score", { action: "clear", client_id: a, reason: "done" });
  eq([r.effective_score, r.override], [50, null], "cleared");
  const o = await call("get_client_overview", { client_id: a });
  eq([o.health.current_score, o.health.computed_score, o.health.override], [50, 50, null], "overview");
});

console.log(`ids ${a} ${b} ${messageId}`);
await finish();
