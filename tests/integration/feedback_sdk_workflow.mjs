// feedback_sdk_workflow.mjs - the feedback workflow through the official TypeScript SDK client:
// register_client -> collect_feedback x5 -> analyze_feedback_sentiment (exact counts and score) ->
// share_product_insights with two of the feedback ids -> manage_voice_of_customer report, loop
// closed for one item. The SDK validates every structuredContent against the tool's outputSchema.
// usage: node feedback_sdk_workflow.mjs URL SDK_ESM_DIR   prints "N passed, N failed"
import { start, check, assert, eq, call, finish } from "./sdk_lib.mjs";

const { client, transport } = await start("csmcp-feedback-workflow");
const tag = "fbwf" + Math.random().toString(16).slice(2, 10);
const today = new Date().toISOString().slice(0, 10);
const plus = (k) => new Date(Date.now() + k * 86400000).toISOString().slice(0, 10);
let clientId;
const ids = [];

await check("connect and list the feedback tools", async () => {
  await client.connect(transport);
  let cursor, names = [];
  do {
    const r = await client.listTools(cursor ? { cursor } : {});
    names.push(...r.tools.map((t) => t.name));
    cursor = r.nextCursor;
  } while (cursor && names.length < 10000);
  for (const n of ["collect_feedback", "analyze_feedback_sentiment", "share_product_insights", "track_cs_metrics",
                   "analyze_product_usage", "manage_voice_of_customer"])
    assert(names.includes(n), `tool ${n} listed`);
});

await check("collect_feedback x5: labels, follow-up days, escalation and assignee", async () => {
  const r = await call("register_client", { client_name: `Feedback ${tag}`, company_name: "Feedback Inc", contract_value: 12000,
                                            licensed_seats: 5, tier: "standard" });
  clientId = r.client_id;
  const base = { client_id: clientId, source: "email", submitter_email: "pat@example.com", submitter_name: "Pat", category: "product" };
  const items = [
    { feedback_type: "product_feedback", title: "Love it", content: "Great and easy, excellent work", priority: "low" },
    { feedback_type: "service_feedback", title: "Support", content: "The support team was helpful", priority: "low", category: "support" },
    { feedback_type: "general", title: "Note", content: "Nothing special this month", priority: "medium" },
    { feedback_type: "bug_report", title: "Export broken", content: "The export is broken, a bug since Monday", priority: "high" },
    { feedback_type: "bug_report", title: "Search", content: "Slow, terrible and awful search", priority: "critical" },
  ];
  const want = [["very_positive", 0.8, false, null, false, "cs-team@company.com"],
                ["positive", 0.5, false, null, false, "support-team@company.com"],
                ["neutral", 0, false, null, false, "cs-team@company.com"],
                ["negative", -0.5, true, plus(3), false, "product-team@company.com"],
                ["very_negative", -0.8, true, plus(1), true, "product-team@company.com"]];
  for (let k = 0; k < 5; k++) {
    const o = await call("collect_feedback", { ...base, ...items[k] });
    assert(/^FB-[0-9]+$/.test(o.feedback_id), o.feedback_id);
    ids.push(o.feedback_id);
    eq([o.sentiment_analysis.sentiment, o.sentiment_analysis.sentiment_score, o.routing.follow_up_required, o.routing.follow_up_by,
        o.routing.escalation_required, o.routing.assigned_to], want[k], `item ${k + 1}`);
  }
});

await check("analyze_feedback_sentiment: 1/1/1/1/1, score (1 + 0.5 + 0 - 0.5 - 1) / 5 = 0 -> neutral, fair 60", async () => {
  const r = await call("analyze_feedback_sentiment", { client_id: clientId, period_start: today, period_end: today });
  eq(r.total_feedback, 5, "total");
  eq(r.sentiment_breakdown.counts, { very_positive: 1, positive: 1, neutral: 1, negative: 1, very_negative: 1 }, "counts");
  eq([r.overall_sentiment_score, r.overall_sentiment, r.comparison.trend], [0, "neutral", "no_baseline"], "aggregate");
  eq(r.health_indicators, { status: "fair", score: 60 }, "health");
});

let insightId;
await check("share_product_insights with the two bug ids: 0.4 + 2 + 0.4 + 1.0 = 3.8, high urgency", async () => {
  const r = await call("share_product_insights", { insight_type: "bug_report", title: "Export and search defects",
    description: "Two defects reported this week", supporting_feedback_ids: [ids[3], ids[4]], priority: "high",
    affected_customers: [clientId], customer_impact: "Month-end reports blocked", business_impact: "Renewal risk",
    recommended_action: "Fix export first" });
  insightId = r.insight_id;
  assert(/^PI-[0-9]+$/.test(insightId), insightId);
  eq([r.impact_summary.business_value_score, r.impact_summary.urgency_level, r.delivery_summary.executive_escalation,
      r.insight_record.estimated_effort], [3.8, "high", false, "Small to Medium"], "scores");
  eq([r.supporting_feedback.count, r.supporting_feedback.avg_sentiment, r.supporting_feedback.overall], [2, -0.65, "negative"], "support");
  eq(r.insight_record.supporting_feedback_ids, [ids[3], ids[4]].sort(), "linked feedback");
});

await check("manage_voice_of_customer: close one loop, roadmap link, then a stored report of the day", async () => {
  const c = await call("manage_voice_of_customer", { action: "close_feedback_loop", feedback_id: ids[4], response: "Search fix shipped" });
  eq([c.feedback.status, c.on_time], ["resolved", true], "loop closed");
  const again = await client.callTool({ name: "manage_voice_of_customer",
                                        arguments: { action: "close_feedback_loop", feedback_id: ids[4], response: "again" } });
  assert(again.isError, "a second close is refused");
  const m = await call("manage_voice_of_customer", { action: "update_customer_roadmap", insight_id: insightId, roadmap_item: "Export v2",
                                                     roadmap_status: "planned" });
  eq([m.insight.roadmap_item, m.insight.roadmap_status], ["Export v2", "planned"], "roadmap");
  const r = await call("manage_voice_of_customer", { action: "create_voc_report", client_id: clientId, period_start: today,
                                                     period_end: today, target_audience: "product" });
  assert(/^VOC-[0-9]+$/.test(r.report_id), r.report_id);
  eq(r.delivery.recipients, ["product-team@company.com"], "recipients");
  eq([r.report.sentiment.total_feedback, r.report.product_insights.count, r.report.product_insights.on_roadmap],
     [5, 1, 1], "report figures");
  eq([r.report.feedback_loop.needing_follow_up, r.report.feedback_loop.responded, r.report.feedback_loop.closure_rate],
     [2, 1, 0.5], "loop in the report");
  eq(r.report.customer_quotes.negative[0].feedback_id, ids[4], "most negative quote first");
});

await finish(client);
