// onboarding_sdk_workflow.mjs - the onboarding workflow through the official TypeScript SDK client:
// register_client -> create_onboarding_plan -> activate_onboarding_automation ->
// deliver_training_session with scores -> manage_certification_program (create, issue) ->
// update_onboarding_progress -> track_onboarding_progress, with exact values. The SDK validates
// every structuredContent against the tool's outputSchema.
// usage: node onboarding_sdk_workflow.mjs URL SDK_ESM_DIR MODULE_ID TAG   prints "N passed, N failed"
import { pathToFileURL } from "node:url";
import path from "node:path";

const url = new URL(process.argv[2]);
const sdk = process.argv[3];
const moduleId = process.argv[4];
const tag = process.argv[5];
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
function canon(v) {  // JSON with sorted keys: jsonb does not keep key order
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
  return r.structuredContent;
}
async function callFail(name, args) {
  const r = await client.callTool({ name, arguments: args });
  assert(r.isError, `${name} should fail: ${JSON.stringify(r)}`);
  return r.content[0].text;
}

const client = new Client({ name: "csmcp-onboarding-workflow", version: "1.0.0" }, { capabilities: {} });
const transport = new StreamableHTTPClientTransport(url);
const today = new Date().toISOString().slice(0, 10);
const plus = (d) => new Date(Date.parse(today) + d * 86400000).toISOString().slice(0, 10);
let clientId, planId;

await check("connect and list the onboarding tools", async () => {
  await client.connect(transport);
  let cursor, names = [];
  do {
    const r = await client.listTools(cursor ? { cursor } : {});
    names.push(...r.tools.map((t) => t.name));
    cursor = r.nextCursor;
  } while (cursor && names.length < 10000);
  for (const n of ["register_client", "create_onboarding_plan", "activate_onboarding_automation",
                   "deliver_training_session", "manage_certification_program", "update_onboarding_progress",
                   "track_onboarding_progress", "optimize_time_to_value", "map_customer_journey",
                   "optimize_onboarding_process"])
    assert(names.includes(n), `tool ${n} listed`);
});

await check("register_client", async () => {
  const r = await call("register_client", { client_name: `Onboard ${tag}`, company_name: "Onboard Inc",
                                            contract_value: 30000, licensed_seats: 10, tier: "professional" });
  clientId = r.client_id;
  assert(/^cs_[0-9]+_onboard_/.test(clientId), clientId);
});

await check("create_onboarding_plan (professional, low complexity, 4 weeks: M1..M4, 46 h, TTFV 21 days)", async () => {
  const r = await call("create_onboarding_plan", { client_id: clientId, customer_goals: ["Replace the spreadsheets"],
                                                   technical_complexity: "low", team_size: 3 });
  planId = r.onboarding_plan.plan_id;
  eq(r.onboarding_plan.milestones.map((m) => [m.template_code, m.week, m.estimated_hours, m.due_date]),
     [["M1", 1, 8, plus(7)], ["M2", 2, 12, plus(14)], ["M3", 3, 16, plus(21)], ["M4", 4, 10, plus(28)]], "milestones");
  eq([r.onboarding_plan.status, r.metrics.total_estimated_hours, r.metrics.total_tasks,
      r.metrics.time_to_first_value_target_days], ["draft", 46, 12, 21], "plan metrics");
});

await check("activate_onboarding_automation (draft -> in_progress, 7 triggers registered)", async () => {
  const r = await call("activate_onboarding_automation", { client_id: clientId, plan_id: planId });
  eq([r.plan_status.previous, r.plan_status.current, r.registered_trigger_count], ["draft", "in_progress", 7], "activation");
});

await check("deliver_training_session with scores (pass = score >= 0.75)", async () => {
  const r = await call("deliver_training_session", {
    client_id: clientId, training_module_id: moduleId, session_date: `${plus(-1)} 10:00`,
    attendee_emails: [`carl@${tag}.io`],
    attendees: [{ email: `ana@${tag}.io`, assessment_score: 0.9, rating: 5 },
                { email: `ben@${tag}.io`, assessment_score: 0.6, rating: 4 }] });
  // invited 3, attended 2, passed 1 of 2: attendance 0.667, pass 0.5, mean rating 4.5
  eq([r.session_metrics.attendance_rate, r.session_metrics.completion_rate, r.session_metrics.pass_rate,
      r.session_metrics.average_rating], [0.667, 1, 0.5, 4.5], "session metrics");
});

await check("manage_certification_program: program, issue for the user who passed, refusal for the other", async () => {
  await call("manage_certification_program", { client_id: clientId, action: "create", certification_level: "basic",
                                                module_ids: [moduleId] });
  const r = await call("manage_certification_program", { client_id: clientId, action: "issue",
                                                         certification_level: "basic", user_email: `ana@${tag}.io` });
  eq([r.status, r.result.status, r.result.user_email], ["issued", "active", `ana@${tag}.io`], "issued");
  const msg = await callFail("manage_certification_program", { client_id: clientId, action: "issue",
                                                               certification_level: "basic", user_email: `ben@${tag}.io` });
  assert(msg.includes(`ben@${tag}.io has not passed every basic module: ${moduleId} (best score 0.600 < 0.75)`), msg);
  const t = await call("manage_certification_program", { client_id: clientId, action: "track" });
  eq([t.result.trained_users, t.result.certified_users, t.result.certification_rate], [2, 1, 0.5], "track");
});

await check("update_onboarding_progress: M1 completed, M2 started and completed", async () => {
  await call("update_onboarding_progress", { client_id: clientId, plan_id: planId, milestone_id: `${planId}_m1`,
                                             milestone_status: "completed" });
  await call("update_onboarding_progress", { client_id: clientId, plan_id: planId, milestone_id: `${planId}_m2`,
                                             milestone_status: "in_progress" });
  const r = await call("update_onboarding_progress", { client_id: clientId, plan_id: planId,
                                                       milestone_id: `${planId}_m2`, milestone_status: "completed" });
  eq(r.milestones.map((m) => m.status), ["completed", "completed", "not_started", "not_started"], "milestones");
});

await check("track_onboarding_progress shows the exact completion", async () => {
  const r = await call("track_onboarding_progress", { client_id: clientId });
  // 2 of 4 milestones (50.0 %), 6 of 12 tasks; training: ana completed, ben failed, carl absent -> 1/3
  eq([r.progress_report.plan_id, r.progress_report.status, r.progress_report.completion_rate,
      r.progress_report.completion_percentage, r.progress_report.task_completion_rate],
     [planId, "in_progress", 0.5, 50, 0.5], "progress");
  eq([r.training_metrics.users_invited, r.training_metrics.users_completed, r.training_metrics.training_completion_rate],
     [3, 1, 0.333], "training");
  eq([r.team_metrics.users_certified, r.projection.projected_completion_date], [1, null], "team and projection");
});

await transport.terminateSession().catch(() => {});
await client.close();
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
