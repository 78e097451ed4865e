// communication_sdk_workflow.mjs - the communication workflow through the official TypeScript SDK
// client: send_personalized_email to a tier (dry run, then send) -> delivery states (get_status)
// -> conduct_executive_review schedule / prepare / complete for an account of that tier, with
// exact values. The SDK validates every structuredContent against the tool's outputSchema.
// usage: node communication_sdk_workflow.mjs URL SDK_ESM_DIR CLIENT_ID EXPECTED_RECIPIENTS
//   CLIENT_ID: an enterprise account made by the Python side (primary contact "Kim Park",
//   1 open P1 ticket, 1 open opportunity of 40000 at 0.5, 10 days x 6 active users);
//   EXPECTED_RECIPIENTS: the tier's recipients counted by the Python side in SQL.
import { start, check, assert, eq, call, refused, finish } from "./sdk_lib.mjs";

const { client, transport, args } = await start("csmcp-communication-workflow");
const [clientId, expectedText] = args;
const expected = Number(expectedText);
const email = {
  campaign_name: `Enterprise update ${clientId}`, template_type: "product_update",
  subject_line: "{{first_name}}, news for {{company_name}}",
  body_text: "Hello {{contact_name}}, your {{tier}} plan now includes {{feature}}.",
  sender_email: "success@csmcp.test", personalization_tokens: { feature: "audit export" },
  target_tier: "enterprise", send_immediately: true,
};
let campaignId, ebrId;

await check("connect and list the communication tools", async () => {
  await client.connect(transport);
  let cursor, names = [];
  do {
    const r = await client.listTools(cursor ? { cursor } : {});
    names.push(...r.tools.map((t) => t.name));
    cursor = r.nextCursor;
  } while (cursor && names.length < 10000);
  for (const n of ["send_personalized_email", "conduct_executive_review", "automate_newsletters", "manage_community",
                   "manage_advocacy_program", "automate_communications"])
    assert(names.includes(n), `tool ${n} listed`);
});

await check("dry run to the enterprise tier: recipients, 3 rendered previews, nothing stored", async () => {
  const r = await call("send_personalized_email", { ...email, dry_run: true });
  eq([r.status, r.campaign_id, r.targeting.recipients], ["dry_run", null, expected], "dry run");
  eq(r.preview.length, Math.min(3, expected), "previews");
  for (const m of r.preview) assert(!m.subject.includes("{{") && !m.body_text.includes("{{"), "rendered");
  const one = await call("send_personalized_email", { ...email, target_tier: undefined, target_client_ids: [clientId],
                                                       dry_run: true });
  eq(one.preview, [{ client_id: clientId, email: `kim@${clientId.replace(/_/g, "-")}.test`, name: "Kim Park",
                     subject: "Kim, news for Park Industries", body_html: null,
                     body_text: "Hello Kim Park, your enterprise plan now includes audit export." }], "one account");
});

await check("unknown token refused, naming it", async () => {
  await refused("send_personalized_email", { ...email, body_text: "Hi {{nickname}}" },
                "body_text: unknown personalization token {{nickname}}");
});

await check("send: one queued outbox message per recipient", async () => {
  const r = await call("send_personalized_email", email);
  campaignId = r.campaign_id;
  assert(/^campaign_[0-9]+_enterprise_update_/.test(campaignId), campaignId);
  eq([r.status, r.targeting.recipients, r.delivery.configured], ["sent", expected, true], "sent");
  eq(r.delivery.by_state, { scheduled: 0, queued: expected, pending_approval: 0, sending: 0, sent: 0, failed: 0, dead: 0,
                            suppressed: 0, not_configured: 0 }, "states");
  eq([r.progress.state, r.progress.prepared], ["done", expected], "stored in the call's transaction");
});

await check("delivery states through get_status", async () => {
  const r = await call("send_personalized_email", { action: "get_status", campaign_id: campaignId });
  eq([r.recipients, r.status, r.delivery.by_state.queued, r.delivery.by_state.not_configured], [expected, "sent", expected, 0],
     "status");
});

await check("conduct_executive_review: schedule, listed as upcoming", async () => {
  const when = new Date(Date.now() + 14 * 86400000);
  when.setUTCHours(16, 0, 0, 0);
  const r = await call("conduct_executive_review", { action: "schedule_ebr", client_id: clientId, ebr_type: "quarterly",
                                                     scheduled_date: when.toISOString(),
                                                     customer_attendees: [{ name: "Kim Park", title: "CIO" }],
                                                     vendor_attendees: [{ name: "Sam CSM" }],
                                                     agenda_items: ["Adoption", "Roadmap"] });
  ebrId = r.ebr.ebr_id;
  eq([r.ebr.status, r.ebr.duration_minutes, r.ebr.customer_attendees.length], ["scheduled", 60, 1], "scheduled");
  const u = await call("conduct_executive_review", { action: "list_upcoming_ebrs", client_id: clientId });
  eq(u.ebrs.map((x) => [x.ebr_id, x.days_until]), [[ebrId, 14]], "upcoming");
});

await check("prepare: the briefing equals the account's data", async () => {
  const r = await call("conduct_executive_review", { action: "prepare_ebr", ebr_id: ebrId });
  const b = r.briefing;
  eq([b.health.score, b.tickets.open, b.tickets.open_by_priority.P1], [68, 1, 1], "health and tickets");
  eq([b.open_opportunities.count, b.open_opportunities.total_value, b.open_opportunities.weighted_value], [1, 40000, 20000],
     "opportunities");
  // 10 days x 6 users / 30 = 2.00; 10 x 40 events
  eq([b.usage.avg_daily_active_users_30d, b.usage.events_30d, b.usage.days_with_data_30d], [2, 400, 10], "usage");
  eq(r.ebr.status, "prepared", "state");
});

await check("complete: rating, action items, next date; then refused", async () => {
  const next = new Date(Date.now() + 120 * 86400000).toISOString().slice(0, 10);
  const r = await call("conduct_executive_review", { action: "complete_ebr", ebr_id: ebrId, satisfaction_rating: 5,
                                                     next_ebr_date: next,
                                                     action_items: [{ text: "Enable audit export", owner: "Sam CSM",
                                                                      due_date: next }] });
  eq([r.ebr.status, r.ebr.satisfaction_rating, r.ebr.next_ebr_date, r.ebr.action_items.length], ["completed", 5, next, 1],
     "completed");
  await refused("conduct_executive_review", { action: "prepare_ebr", ebr_id: ebrId }, `EBR ${ebrId} is completed`);
});

await finish();
