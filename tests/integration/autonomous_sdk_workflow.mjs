// The autonomous monitors through the official TypeScript SDK client: list and read the
// configuration, subscribe to the account's alerts resource, trigger churn_risk_monitor, receive
// notifications/resources/updated for it, read the resource, check the status.
// argv: URL SDK_ESM_DIR CLIENT_ID (an account whose health score is 40)
import { pathToFileURL } from "node:url";
import path from "node:path";
import { start, check, assert, eq, call, finish } from "./sdk_lib.mjs";

const { client, transport, args } = await start("csmcp-autonomous-workflow");
const [cid] = args;
const { ResourceUpdatedNotificationSchema } = await import(
  pathToFileURL(path.join(process.argv[3], "types.js")).href);
const updates = [];
let wake = null;
client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => {
  updates.push({ uri: n.params.uri, at: Date.now() });
  if (wake) wake();
});
await client.connect(transport);
const uri = `csmcp://alerts/${cid}`;

await check("list_available_workers: the seven monitors", async () => {
  const out = await call("list_available_workers", {});
  eq(out.workers.map((w) => w.name), ["churn_risk_monitor", "usage_drop_alerts", "onboarding_progress",
    "nps_csat_monitor", "support_sla_tracker", "upsell_detector", "retention_analyzer"], "names");
});

await check("get_worker_config: churn_risk_monitor defaults", async () => {
  const out = await call("get_worker_config", { worker_name: "churn_risk_monitor" });
  eq(out.config.params, { health_score_threshold: 60, alert_on_critical: true }, "params");
});

await check("subscribe, trigger, notified within one tick", async () => {
  await client.subscribeResource({ uri });
  await new Promise((r) => setTimeout(r, 500)); // the standalone GET stream is open
  const t0 = Date.now();
  const run = await call("trigger_worker_now", { worker_name: "churn_risk_monitor" });
  assert(run.status === "ok", "run ok");
  const deadline = t0 + 3000;
  while (!updates.some((u) => u.uri === uri) && Date.now() < deadline)
    await new Promise((r) => { wake = r; setTimeout(r, 100); });
  const u = updates.find((x) => x.uri === uri);
  assert(u, `no notifications/resources/updated for ${uri} (got ${JSON.stringify(updates)})`);
  console.log(`     notified ${u.at - t0} ms after the call was sent`);
});

await check("read the account's alerts resource", async () => {
  const r = await client.readResource({ uri });
  const body = JSON.parse(r.contents[0].text);
  eq(body.alerts.map((a) => [a.monitor, a.kind, a.severity]), [["churn_risk_monitor", "critical_risk", "critical"]], "alerts");
});

await check("get_autonomous_status: a leader runs", async () => {
  const out = await call("get_autonomous_status", {});
  assert(out.running && out.leader.up, "leader up");
  assert(out.workers.churn_risk_monitor.last_run.trigger === "manual", "last run manual");
});

await finish();
