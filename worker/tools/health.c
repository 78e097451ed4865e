/*
 * tools/health.c - the health and segmentation category: track_usage_engagement,
 * calculate_health_score, segment_customers, track_feature_adoption, manage_lifecycle_stages,
 * track_adoption_milestones, segment_by_value_tier, analyze_engagement_patterns.
 *
 * Each tool is one SQL function (db/migrations/0003, 0005, 0006) run by tool_sql_handler. The
 * health model's exact rules live in 0003_health_model.sql and docs/tools-preamble.md.
 * Invariants as in core.c: input_schema lists every argument the function reads, output_schema
 * every top-level field it returns with its JSON type.
 */
#include "tool.h"

#include "tools_schema.h"

#define STAGES      "[\"onboarding\",\"active\",\"at_risk\",\"churned\",\"expansion\",\"renewal\"]"
#define NULLABLE(t) "{\"type\":[\"" t "\",\"null\"]}"
#define T_(t)       "{\"type\":\"" t "\"}"

const struct
    tool_def
        tools_health
            [] =
                {
                    {
                        .name = "track_usage_engagement",
                        .title = "Usage and engagement analytics",
                        .description =
                            "Product usage of one account over a period (default the last 30 "
                            "days), from the "
                            "daily usage rollups: average and peak daily active users, seat "
                            "utilisation, events, "
                            "session minutes, active days, weekday vs weekend activity, a "
                            "series by day, week or "
                            "month, the trend (second half vs first half of the period: > +10% "
                            "up, < -10% down), "
                            "feature breakdown, alerts and recommendations.",
                        .input_schema =
                            "{\"type\":\"object\",\"additionalProperties\":false,\"required\":["
                            "\"client_"
                            "id\"],"
                            "\"properties\":{\"client_id\":" S_CLIENT_ID_PROP ","
                            "\"period_start\":{\"type\":\"string\",\"format\":\"date\","
                            "\"description\":"
                            "\"YYYY-MM-DD, default period_end - 29 days\"},"
                            "\"period_end\":{\"type\":\"string\",\"format\":\"date\","
                            "\"description\":"
                            "\"YYYY-MM-DD (inclusive), default today; the span may not exceed 365 "
                            "days\"},"
                            "\"granularity\":{\"enum\":[\"daily\",\"weekly\",\"monthly\"],"
                            "\"default\":"
                            "\"daily\"},"
                            "\"include_feature_breakdown\":{\"type\":\"boolean\",\"default\":true},"
                            "\"include_user_segmentation\":{\"type\":\"boolean\",\"description\":"
                            "\"accepted for "
                            "compatibility; per-user data is not kept in rollups\"},"
                            "\"benchmark_comparison\":{\"type\":\"boolean\",\"description\":"
                            "\"accepted for "
                            "compatibility\"}}}",
                        .output_schema =
                            "{\"type\":\"object\",\"required\":[\"client_id\",\"analysis_period\","
                            "\"engagement_metrics\",\"usage_trend\",\"usage_series\",\"alerts\","
                            "\"recommendations\"],\"properties\":{\"client_id\":" T_(
                                "string") ","
                                          "\"analysis_period\":{\"type\":\"object\",\"required\":["
                                          "\"start\",\"end\",\"days\"]},"
                                          "\"engagement_metrics\":{\"type\":\"object\","
                                          "\"required\":[\"avg_"
                                          "daily_active_users\","
                                          "\"peak_daily_active_users\",\"total_events\",\"active_"
                                          "days\"],"
                                          "\"properties\":{"
                                          "\"licensed_seats\":" NULLABLE(
                                              "integer") ",\"avg_daily_active_"
                                                         "users\":" T_("number") ",\"peak_daily_"
                                                                                 "active_"
                                                                                 "users\":" T_("int"
                                                                                               "ege"
                                                                                               "r") ",\"seat_utilization\":" NULLABLE("number") ",\"total_events\":" T_(
                                                                                     "integer") ","
                                                                                                "\""
                                                                                                "to"
                                                                                                "ta"
                                                                                                "l_"
                                                                                                "se"
                                                                                                "ss"
                                                                                                "io"
                                                                                                "n"
                                                                                                "_m"
                                                                                                "in"
                                                                                                "ut"
                                                                                                "e"
                                                                                                "s"
                                                                                                "\""
                                                                                                ":" T_("integer") ",\"active_days\":" T_(
                                                                                                    "integer") "}},"
                                                                                                               "\"usage_trend\":{\"type\":\"object\",\"required\":[\"direction\"],\"properties\":{"
                                                                                                               "\"direction\":{\"enum\":[\"up\",\"down\",\"flat\"]},\"change_pct\":" NULLABLE(
                                                                                                                   "number") "}},"
                                                                                                                             "\"usage_series\":{\"type\":\"array\",\"items\":{\"type\":\"object\",\"required\":"
                                                                                                                             "[\"period\",\"avg_daily_active_users\",\"events\"]}},"
                                                                                                                             "\"feature_breakdown\":{\"type\":[\"array\",\"null\"]},"
                                                                                                                             "\"alerts\":{\"type\":\"array\"},\"recommendations\":{\"type\":\"array\",\"items\":"
                                                                                                                             "{\"type\":\"string\"}}}}",
                        .hints = TOOL_HINT_READONLY | TOOL_HINT_IDEMPOTENT,
                        .scope = TOOL_SCOPE_READ,
                        .handler = tool_sql_handler,
                        .sql = "SELECT csmcp.tool_track_usage_engagement($1::jsonb, $2)",
                    },
                    {
                        .name = "calculate_health_score",
                        .title = "Calculate the health score",
                        .description = "Computes the account's health from stored data over the "
                                       "lookback (default 30 "
                                       "days): usage (average daily active users / licensed "
                                       "seats), engagement (days "
                                       "since "
                                       "last usage), support (tickets and P0/P1 tickets opened), "
                                       "satisfaction (NPS of "
                                       "the "
                                       "responses) and payment (overdue / late invoices, renewal < "
                                       "30 days). Score = "
                                       "round(0.35 usage + 0.25 engagement + 0.15 support + 0.15 "
                                       "satisfaction + 0.10 "
                                       "payment), or custom weights summing to 1 +/- 0.01. Trend "
                                       "vs the previous "
                                       "stored "
                                       "score (> +3 improving, < -3 declining), risk level (>=80 "
                                       "low, >=65 medium, "
                                       ">=50 "
                                       "high, else critical), churn probability clamp((100 - "
                                       "score)/100, 0.05, 0.95). "
                                       "Every "
                                       "calculation is stored as history and updates the account's "
                                       "score. Exact "
                                       "rules: "
                                       "see the preamble of this reference.",
                        .input_schema =
                            "{\"type\":\"object\",\"additionalProperties\":false,\"required\":["
                            "\"client_"
                            "id\"],"
                            "\"properties\":{\"client_id\":" S_CLIENT_ID_PROP ","
                            "\"scoring_model\":{\"enum\":[\"weighted_composite\",\"ml_predictive\","
                            "\"custom\"],"
                            "\"default\":\"weighted_composite\",\"description\":\"custom requires "
                            "component_weights; ml_predictive is the weighted composite\"},"
                            "\"component_weights\":{\"type\":\"object\",\"additionalProperties\":"
                            "false,"
                            "\"properties\":{\"usage_weight\":{\"type\":\"number\",\"minimum\":0,"
                            "\"maximum\":1},"
                            "\"engagement_weight\":{\"type\":\"number\",\"minimum\":0,\"maximum\":"
                            "1},"
                            "\"support_weight\":{\"type\":\"number\",\"minimum\":0,\"maximum\":1},"
                            "\"satisfaction_weight\":{\"type\":\"number\",\"minimum\":0,"
                            "\"maximum\":1},"
                            "\"payment_weight\":{\"type\":\"number\",\"minimum\":0,\"maximum\":1}}}"
                            ","
                            "\"lookback_period_days\":{\"type\":\"integer\",\"minimum\":1,"
                            "\"maximum\":365,"
                            "\"default\":30},"
                            "\"include_predictions\":{\"type\":\"boolean\",\"default\":true},"
                            "\"risk_threshold\":{\"type\":\"number\",\"minimum\":0,\"maximum\":100,"
                            "\"default\":60}}}",
                        .output_schema =
                            "{\"type\":\"object\",\"required\":[\"client_id\",\"calculation_"
                            "timestamp\","
                            "\"score_id\",\"scoring_model\",\"lookback_period_days\",\"current_"
                            "health_"
                            "score\","
                            "\"previous_health_score\",\"score_change\",\"health_trend\",\"risk_"
                            "level\","
                            "\"component_scores\",\"component_weights\",\"health_metrics\",\"risk_"
                            "indicators\","
                            "\"historical_scores\",\"contributing_factors\",\"improvement_"
                            "opportunities\","
                            "\"automated_alerts\",\"recommended_actions\"],\"properties\":{"
                            "\"client_id\":" T_("string") ",\"calculation_timestamp\":" T_(
                                "string") ","
                                          "\"score_id\":" T_("integer") ",\"scoring_model\":" T_(
                                              "string") ","
                                                        "\"lookback_"
                                                        "period_"
                                                        "days\":" T_("i"
                                                                     "n"
                                                                     "t"
                                                                     "e"
                                                                     "g"
                                                                     "e"
                                                                     "r") ","
                                                                          "\"current_health_"
                                                                          "score\":{\"type\":"
                                                                          "\"integer\",\"minimum\":"
                                                                          "0,\"maximum\":100},"
                                                                          "\"previous_health_"
                                                                          "score\":" NULLABLE("inte"
                                                                                              "ger") ",\"score_change\":" NULLABLE(
                                                                              "integer") ","
                                                                                         "\"health_"
                                                                                         "trend\":{"
                                                                                         "\"enum\":"
                                                                                         "[\"improv"
                                                                                         "ing\","
                                                                                         "\"stable"
                                                                                         "\","
                                                                                         "\"declini"
                                                                                         "ng\"]},"
                                                                                         "\"risk_"
                                                                                         "level\":{"
                                                                                         "\"enum\":"
                                                                                         "[\"low\","
                                                                                         "\"medium"
                                                                                         "\","
                                                                                         "\"high\","
                                                                                         "\"critica"
                                                                                         "l\"]},"
                                                                                         "\"compone"
                                                                                         "nt_"
                                                                                         "scores\":"
                                                                                         "{\"type\""
                                                                                         ":\"object"
                                                                                         "\","
                                                                                         "\"require"
                                                                                         "d\":["
                                                                                         "\"usage\""
                                                                                         ",\"engage"
                                                                                         "ment\","
                                                                                         "\"support"
                                                                                         "\","
                                                                                         "\"satisfa"
                                                                                         "ction\","
                                                                                         "\"payment"
                                                                                         "\"],"
                                                                                         "\"propert"
                                                                                         "ies\":{"
                                                                                         "\"usage\""
                                                                                         ":" T_("in"
                                                                                                "te"
                                                                                                "ge"
                                                                                                "r") ",\"engagement\":" T_("integer") ",\"support\":" T_("integer") ",\"satisfaction\":" T_("number") ",\"payment\":" T_("integer") "}},"
                                                                                                                                                                                                                                    "\"component_weights\":{\"type\":\"object\"},\"health_metrics\":{\"type\":\"object\","
                                                                                                                                                                                                                                    "\"required\":[\"avg_daily_active_users\",\"licensed_seats\","
                                                                                                                                                                                                                                    "\"days_since_last_usage\",\"tickets_opened\",\"critical_tickets_opened\","
                                                                                                                                                                                                                                    "\"nps_responses\",\"nps\",\"overdue_invoices\",\"late_invoices\","
                                                                                                                                                                                                                                    "\"days_until_renewal\"]},"
                                                                                                                                                                                                                                    "\"risk_indicators\":{\"type\":\"array\",\"items\":{\"type\":\"object\",\"required\":"
                                                                                                                                                                                                                                    "[\"indicator\",\"severity\",\"value\",\"threshold\"]}},"
                                                                                                                                                                                                                                    "\"churn_prediction\":{\"type\":[\"object\",\"null\"],\"properties\":{"
                                                                                                                                                                                                                                    "\"churn_probability\":{\"type\":\"number\",\"minimum\":0.05,\"maximum\":0.95},"
                                                                                                                                                                                                                                    "\"churn_risk_level\":" T_("string") ",\"predicted_churn_date\":" NULLABLE(
                                                                                                                                                                                                                                        "string") "}},"
                                                                                                                                                                                                                                                  "\"historical_scores\":{\"type\":\"array\",\"items\":{\"type\":\"object\",\"required\":"
                                                                                                                                                                                                                                                  "[\"calculated_at\",\"score\"]}},"
                                                                                                                                                                                                                                                  "\"contributing_factors\":{\"type\":\"array\"},\"improvement_opportunities\":{\"type\":"
                                                                                                                                                                                                                                                  "\"array\"},\"automated_alerts\":{\"type\":\"array\"},\"recommended_actions\":{\"type\":"
                                                                                                                                                                                                                                                  "\"array\",\"items\":{\"type\":\"string\"}}}}",
                        .hints = 0,
                        .scope = TOOL_SCOPE_WRITE,
                        .handler = tool_sql_handler,
                        .sql = "SELECT csmcp.tool_calculate_health_score($1::jsonb, $2)",
                    },
                    {
                        .name = "segment_customers",
                        .title = "Segment customers",
                        .description =
                            "Builds segments over non-churned accounts and persists them (segments "
                            "and "
                            "their "
                            "members). value_based: ARR of the active contract (VIP Strategic >= "
                            "100000, "
                            "High-Value Growth >= 50000, Standard >= 10000; below is not "
                            "segmented); "
                            "usage_based: 30-day average daily active users / seats (Power Users "
                            ">= 0.8, "
                            "Active "
                            "Regular >= 0.4, Casual, No Seat Data); health_based (Healthy & "
                            "Thriving >= "
                            "80, "
                            "Moderate >= 60, At Risk); industry; lifecycle (all accounts); custom "
                            "(criteria: "
                            "tier, industry, lifecycle_stage, health_min, health_max, min_arr, "
                            "max_arr, "
                            "name). "
                            "Segments smaller than min_segment_size are not created.",
                        .input_schema =
                            "{\"type\":\"object\",\"additionalProperties\":false,\"required\":"
                            "[\"segmentation_type\"],\"properties\":{"
                            "\"segmentation_type\":{\"enum\":[\"value_based\",\"usage_based\","
                            "\"health_"
                            "based\","
                            "\"industry\",\"lifecycle\",\"custom\"]},"
                            "\"criteria\":{\"type\":\"object\",\"additionalProperties\":false,"
                            "\"properties\":{"
                            "\"name\":{\"type\":\"string\",\"maxLength\":200},"
                            "\"tier\":{\"enum\":[\"starter\",\"standard\",\"professional\","
                            "\"enterprise\"]}"
                            ","
                            "\"industry\":{\"type\":\"string\"},\"lifecycle_stage\":{"
                            "\"enum\":" STAGES "},"
                            "\"health_min\":{\"type\":\"number\",\"minimum\":0,\"maximum\":100},"
                            "\"health_max\":{\"type\":\"number\",\"minimum\":0,\"maximum\":100},"
                            "\"min_arr\":{\"type\":\"number\",\"minimum\":0},"
                            "\"max_arr\":{\"type\":\"number\",\"minimum\":0}}},"
                            "\"min_segment_size\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":"
                            "100000,"
                            "\"default\":5},"
                            "\"include_recommendations\":{\"type\":\"boolean\"},"
                            "\"benchmark_analysis\":{\"type\":\"boolean\"}}}",
                        .output_schema =
                            "{\"type\":\"object\",\"required\":[\"segmentation_id\",\"segmentation_"
                            "type\","
                            "\"execution_timestamp\",\"total_customers_analyzed\",\"segments_"
                            "created\","
                            "\"segments\",\"customers_segmented\",\"customers_unsegmented\"],"
                            "\"properties\":{"
                            "\"segmentation_id\":" T_("string") ",\"segmentation_type\":" T_(
                                "string") ","
                                          "\"e"
                                          "xec"
                                          "uti"
                                          "on_"
                                          "tim"
                                          "est"
                                          "amp"
                                          "\""
                                          ":" T_("string") ",\"criteria\":" T_(
                                              "object") ","
                                                        "\"min_segment_size\":" T_("integer") ",\"t"
                                                                                              "otal"
                                                                                              "_cus"
                                                                                              "tome"
                                                                                              "rs_"
                                                                                              "anal"
                                                                                              "yzed"
                                                                                              "\""
                                                                                              ":" T_("integer") ",\"segments_created\":" T_("integer") ","
                                                                                                                                                       "\"segments\":{\"type\":\"array\",\"items\":{\"type\":\"object\",\"required\":"
                                                                                                                                                       "[\"segment_id\",\"name\",\"customer_count\",\"total_arr\",\"avg_arr\","
                                                                                                                                                       "\"avg_health_score\",\"engagement_strategy\"],\"properties\":{\"segment_id\":" T_("string") ",\"name\":" T_("string") ",\"customer_count\":" T_("integer") ",\"total_arr\":" T_("number") ",\"avg_arr\":" T_(
                                                                                                                                                           "number") ",\"avg_health_score\":" T_("number") "}}},"
                                                                                                                                                                                                           "\"customers_segmented\":" T_("integer") ",\"customers_unsegmented\":" T_(
                                                                                                                                                                                                               "integer") "}}",
                        .hints = 0,
                        .scope = TOOL_SCOPE_WRITE,
                        .handler = tool_sql_handler,
                        .sql = "SELECT csmcp.tool_segment_customers($1::jsonb, $2)",
                    },
                    {
                        .name = "track_feature_adoption",
                        .title = "Feature adoption",
                        .description =
                            "Adoption of every product feature over the period (default 90 days) "
                            "from the "
                            "per-feature usage rollups. Across accounts: adoption_rate = accounts "
                            "that "
                            "used the "
                            "feature / non-churned accounts. For one account (client_id): "
                            "adoption_rate = "
                            "days "
                            "the feature was used / days in the period. Features under "
                            "adoption_threshold "
                            "are "
                            "underutilized; new_adopters counts first uses in the period.",
                        .input_schema =
                            "{\"type\":\"object\",\"additionalProperties\":false,\"properties\":{"
                            "\"client_id\":" S_CLIENT_ID_PROP ","
                            "\"feature_id\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":100}"
                            ","
                            "\"time_period_days\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":"
                            "365,"
                            "\"default\":90},"
                            "\"adoption_threshold\":{\"type\":\"number\",\"minimum\":0,\"maximum\":"
                            "1,"
                            "\"default\":0.2},"
                            "\"include_user_personas\":{\"type\":\"boolean\"},"
                            "\"optimization_recommendations\":{\"type\":\"boolean\"}}}",
                        .output_schema =
                            "{\"type\":\"object\",\"required\":[\"scope\",\"overall_adoption_"
                            "rate\","
                            "\"features\","
                            "\"underutilized_features\",\"high_value_features\"],\"properties\":{"
                            "\"scope\":{\"type\":\"object\",\"required\":[\"time_period_days\","
                            "\"accounts_analyzed\",\"features_available\"]},"
                            "\"overall_adoption_rate\":" NULLABLE(
                                "number") ","
                                          "\"features\":{\"type\":\"array\",\"items\":{\"type\":"
                                          "\"object\","
                                          "\"required\":"
                                          "[\"feature_id\",\"name\",\"accounts_using\",\"days_"
                                          "used\","
                                          "\"events\","
                                          "\"adoption_rate\",\"status\"],\"properties\":{\"feature_"
                                          "id\":" T_("string") ",\"adoption_rate\":" T_(
                                              "number") ",\"events\":" T_("integer") ",\"status\":{"
                                                                                     "\"enum\":["
                                                                                     "\"adopted\","
                                                                                     "\"underutiliz"
                                                                                     "ed\"]}}}"
                                                                                     "},"
                                                                                     "\"underutiliz"
                                                                                     "ed_"
                                                                                     "features\":{"
                                                                                     "\"type\":"
                                                                                     "\"array\","
                                                                                     "\"items\""
                                                                                     ":" T_("strin"
                                                                                            "g") "}"
                                                                                                 ","
                                                                                                 "\"high_"
                                                                                                 "v"
                                                                                                 "a"
                                                                                                 "l"
                                                                                                 "u"
                                                                                                 "e"
                                                                                                 "_"
                                                                                                 "f"
                                                                                                 "e"
                                                                                                 "a"
                                                                                                 "t"
                                                                                                 "u"
                                                                                                 "r"
                                                                                                 "e"
                                                                                                 "s"
                                                                                                 "\":{"
                                                                                                 "\"type"
                                                                                                 "\":"
                                                                                                 "\"array"
                                                                                                 "\","
                                                                                                 "\"items"
                                                                                                 "\":" T_(
                                                                                                     "str"
                                                                                                     "in"
                                                                                                     "g") "}}}",
                        .hints = TOOL_HINT_READONLY | TOOL_HINT_IDEMPOTENT,
                        .scope = TOOL_SCOPE_READ,
                        .handler = tool_sql_handler,
                        .sql = "SELECT csmcp.tool_track_feature_adoption($1::jsonb, $2)",
                    },
                    {
                        .name = "manage_lifecycle_stages",
                        .title = "Lifecycle stages",
                        .description =
                            "Stage distribution, transitions of the last 90 days and average "
                            "completed stay "
                            "per stage, all from the recorded lifecycle history. With client_id "
                            "and new_stage it "
                            "moves the account to the new stage and records the transition "
                            "(who, when, why); "
                            "new_stage churned also sets the account status to churned. "
                            "current_stage lists "
                            "the accounts in that stage (lowest health first, at most 50).",
                        .input_schema =
                            "{\"type\":\"object\",\"additionalProperties\":false,\"properties\":{"
                            "\"client_id\":" S_CLIENT_ID_PROP ","
                            "\"current_stage\":{\"enum\":" STAGES "},"
                            "\"new_stage\":{\"enum\":" STAGES
                            ",\"description\":\"perform a transition "
                            "(needs client_id)\"},"
                            "\"reason\":{\"type\":\"string\",\"maxLength\":500},"
                            "\"include_transitions\":{\"type\":\"boolean\",\"default\":true},"
                            "\"intervention_planning\":{\"type\":\"boolean\"},"
                            "\"automation_rules\":{\"type\":\"boolean\"}}}",
                        .output_schema =
                            "{\"type\":\"object\",\"required\":[\"total_customers\",\"stage_"
                            "distribution\","
                            "\"transition_performed\",\"client\",\"stage_transitions_90d\","
                            "\"average_stage_duration_days\",\"customers_in_stage\"],"
                            "\"properties\":{"
                            "\"total_customers\":" T_(
                                "integer") ","
                                           "\"stage_distribution\":{\"type\":\"object\","
                                           "\"required\":" STAGES "},"
                                           "\"transition_performed\":{\"type\":[\"object\","
                                           "\"null\"],"
                                           "\"properties\":{"
                                           "\"client_id\":" T_("string") ",\"from_stage\":" T_(
                                               "string") ",\"to_stage\":" T_("string") "}},"
                                                                                       "\"client\""
                                                                                       ":" NULLABLE(
                                                                                           "objec"
                                                                                           "t") ","
                                                                                                "\""
                                                                                                "st"
                                                                                                "ag"
                                                                                                "e_"
                                                                                                "tr"
                                                                                                "an"
                                                                                                "si"
                                                                                                "ti"
                                                                                                "on"
                                                                                                "s_"
                                                                                                "90"
                                                                                                "d"
                                                                                                "\""
                                                                                                ":" NULLABLE("array") ",\"average_stage_duration_days\":" T_("object") ",\"customers_in_stage\":" NULLABLE(
                                                                                                    "array") "}}",
                        .hints = 0,
                        .scope = TOOL_SCOPE_WRITE,
                        .handler = tool_sql_handler,
                        .sql = "SELECT csmcp.tool_manage_lifecycle_stages($1::jsonb, $2)",
                    },
                    {
                        .name = "track_adoption_milestones",
                        .title = "Adoption milestones",
                        .description =
                            "Progress against the standard adoption framework, each milestone "
                            "derived from "
                            "data: m1 Account Activated (first usage, 3 days), m2 First Value "
                            "Achieved "
                            "(3rd "
                            "feature used, 14), m3 Team Onboarded (daily active users >= 50% of "
                            "seats, "
                            "30), m4 "
                            "Core Features Adopted (all core features used, 60), m5 Integration "
                            "Connected "
                            "(45), "
                            "m6 Advanced Features Explored (90), m7 Business Impact Measured "
                            "(completed "
                            "executive review, 120), m8 Champion Developed (advocate enrolled, "
                            "180); "
                            "target days "
                            "count from the account start. With client_id: per milestone status; "
                            "without: "
                            "completion rates, stuck and fast-track accounts. custom: your "
                            "milestones "
                            "(key, name, target_days) checked against recorded achievements.",
                        .input_schema =
                            "{\"type\":\"object\",\"additionalProperties\":false,\"properties\":{"
                            "\"client_id\":" S_CLIENT_ID_PROP ","
                            "\"milestone_framework\":{\"enum\":[\"standard\",\"custom\"],"
                            "\"default\":"
                            "\"standard\"},"
                            "\"custom_milestones\":{\"type\":\"array\",\"minItems\":1,\"maxItems\":"
                            "50,"
                            "\"items\":"
                            "{\"type\":\"object\",\"required\":[\"key\"],\"additionalProperties\":"
                            "false,"
                            "\"properties\":{\"key\":{\"type\":\"string\",\"minLength\":1,"
                            "\"maxLength\":"
                            "100},"
                            "\"name\":{\"type\":\"string\",\"maxLength\":200},\"target_days\":{"
                            "\"type\":"
                            "\"integer\",\"minimum\":0,\"maximum\":3650}}}},"
                            "\"include_benchmarks\":{\"type\":\"boolean\"},"
                            "\"celebration_recommendations\":{\"type\":\"boolean\"}}}",
                        .output_schema = "{\"type\":\"object\",\"required\":[\"milestone_"
                                         "framework\",\"total_"
                                         "milestones\"],"
                                         "\"properties\":{\"milestone_framework\":" T_(
                                             "string") ",\"total_"
                                                       "milestones\":" T_("int"
                                                                          "ege"
                                                                          "r") ",\"client_id\":" T_("string") ",\"start_date\":" NULLABLE("string") ",\"days_since_start\":" NULLABLE("integer") ",\"milestones_achieved\":" T_("integer") ",\"comp"
                                                                                                                                                                                                                                           "letion_"
                                                                                                                                                                                                                                           "rate\""
                                                                                                                                                                                                                                           ":" T_(
                                                                                                                                                                                                                                               "number") ","
                                                                                                                                                                                                                                                         "\"milestones\":{\"type\":\"array\",\"items\":{\"type\":\"object\",\"required\":"
                                                                                                                                                                                                                                                         "[\"milestone\",\"name\",\"achieved_on\",\"status\"]}},"
                                                                                                                                                                                                                                                         "\"accounts_analyzed\":" T_("integer") ",\"completion_rates\":" T_(
                                                                                                                                                                                                                                                             "array") ",\"stuck_customers\":" T_("array") ",\"fast_track_customers\":" T_("array") "}}",
                        .hints = TOOL_HINT_READONLY | TOOL_HINT_IDEMPOTENT,
                        .scope = TOOL_SCOPE_READ,
                        .handler = tool_sql_handler,
                        .sql = "SELECT csmcp.tool_track_adoption_milestones($1::jsonb, $2)",
                    },
                    {
                        .name = "segment_by_value_tier",
                        .title = "Segment by value tier",
                        .description =
                            "Value tiers of the active accounts by ARR of the active contract "
                            "(defaults: "
                            "strategic >= 200000, enterprise >= 100000, professional >= 50000, "
                            "standard >= "
                            "10000, starter below; override with tier_definitions.<tier>.min_arr), "
                            "persisted "
                            "as segments. Per tier: count, ARR, shares, average health, estimated "
                            "LTV (ARR "
                            "x "
                            "5.5 / 4.75 / 4.0 / 3.0 / 2.5); ARR concentration; VIPs (top 20 "
                            "strategic); "
                            "upgrade "
                            "candidates (health >= 75 and ARR >= 70% of the next tier's floor); "
                            "downgrade "
                            "risks (health < 60); service levels per tier.",
                        .input_schema =
                            "{\"type\":\"object\",\"additionalProperties\":false,\"properties\":{"
                            "\"segmentation_criteria\":{\"type\":\"object\",\"description\":"
                            "\"accepted for "
                            "compatibility; tiers are by ARR\"},"
                            "\"tier_definitions\":{\"type\":\"object\",\"additionalProperties\":"
                            "false,"
                            "\"properties\":{"
                            "\"strategic\":{\"type\":\"object\",\"properties\":{\"min_arr\":{"
                            "\"type\":"
                            "\"number\","
                            "\"minimum\":0}}},"
                            "\"enterprise\":{\"type\":\"object\",\"properties\":{\"min_arr\":{"
                            "\"type\":"
                            "\"number\","
                            "\"minimum\":0}}},"
                            "\"professional\":{\"type\":\"object\",\"properties\":{\"min_arr\":{"
                            "\"type\":"
                            "\"number\",\"minimum\":0}}},"
                            "\"standard\":{\"type\":\"object\",\"properties\":{\"min_arr\":{"
                            "\"type\":"
                            "\"number\","
                            "\"minimum\":0}}}}},"
                            "\"service_level_mapping\":{\"type\":\"boolean\"},"
                            "\"vip_identification\":{\"type\":\"boolean\",\"default\":true},"
                            "\"resource_planning\":{\"type\":\"boolean\"}}}",
                        .output_schema = "{\"type\":\"object\",\"required\":[\"segmentation_id\","
                                         "\"total_"
                                         "customers\","
                                         "\"total_arr\",\"tier_definitions\",\"tier_distribution\","
                                         "\"value_"
                                         "concentration\","
                                         "\"vip_accounts\",\"upgrade_candidates\",\"downgrade_"
                                         "risks\","
                                         "\"service_level_recommendations\"],\"properties\":{"
                                         "\"segmentation_id\":" T_("string") ",\"total_"
                                                                             "customers\":" T_(
                                                                                 "integer") ",\"tot"
                                                                                            "al_"
                                                                                            "arr\""
                                                                                            ":" T_(
                                                                                                "n"
                                                                                                "u"
                                                                                                "m"
                                                                                                "b"
                                                                                                "e"
                                                                                                "r") ",\"tier_definitions\":" T_("object") ","
                                                                                                                                           "\"tier_distribution\":{\"type\":\"object\",\"required\":[\"strategic\","
                                                                                                                                           "\"enterprise\",\"professional\",\"standard\",\"starter\"]},"
                                                                                                                                           "\"value_concentration\":" T_("object") ",\"vip_accounts\":" NULLABLE("array") ",\"upgrade_candidates\":" T_("array") ",\"downgrade_risks\":" T_(
                                                                                                                                               "array") ",\"service_level_recommendations\":" T_("object") "}}",
                        .hints = 0,
                        .scope = TOOL_SCOPE_WRITE,
                        .handler = tool_sql_handler,
                        .sql = "SELECT csmcp.tool_segment_by_value_tier($1::jsonb, $2)",
                    },
                    {
                        .name = "analyze_engagement_patterns",
                        .title = "Engagement patterns and anomalies",
                        .description =
                            "Patterns found in the usage, communication and support data over the "
                            "lookback "
                            "(default 90 days): accounts growing / flat / declining / inactive "
                            "(second "
                            "half vs "
                            "first half average daily active users, +/-10%), weekday share and "
                            "busiest "
                            "day, "
                            "feature breadth and top features, communication volume by channel and "
                            "accounts "
                            "without contact, ticket volume and categories, and anomalies: days "
                            "whose "
                            "active "
                            "users deviate >= 3 standard deviations from the account's mean. "
                            "Scope: all "
                            "accounts, a segment (segment_id, tier, health_min, health_max) or one "
                            "account.",
                        .input_schema =
                            "{\"type\":\"object\",\"additionalProperties\":false,\"properties\":{"
                            "\"analysis_scope\":{\"enum\":[\"all_customers\",\"segment\","
                            "\"individual\"],"
                            "\"default\":\"all_customers\"},"
                            "\"scope_filter\":{\"type\":\"object\",\"additionalProperties\":false,"
                            "\"properties\":{"
                            "\"client_id\":" S_CLIENT_ID_PROP
                            ",\"segment_id\":{\"type\":\"string\"},"
                            "\"tier\":{\"enum\":[\"starter\",\"standard\",\"professional\","
                            "\"enterprise\"]}"
                            ","
                            "\"health_min\":{\"type\":\"number\",\"minimum\":0,\"maximum\":100},"
                            "\"health_max\":{\"type\":\"number\",\"minimum\":0,\"maximum\":100}}},"
                            "\"pattern_types\":{\"type\":\"array\",\"uniqueItems\":true,\"items\":{"
                            "\"enum\":"
                            "[\"temporal\",\"feature_usage\",\"communication\",\"support\"]}},"
                            "\"lookback_period_days\":{\"type\":\"integer\",\"minimum\":7,"
                            "\"maximum\":365,"
                            "\"default\":90},"
                            "\"anomaly_detection\":{\"type\":\"boolean\",\"default\":true},"
                            "\"predictive_insights\":{\"type\":\"boolean\"}}}",
                        .output_schema =
                            "{\"type\":\"object\",\"required\":[\"analysis_scope\",\"lookback_"
                            "period_days\","
                            "\"customers_analyzed\",\"identified_patterns\",\"declining_"
                            "accounts\","
                            "\"temporal_patterns\",\"feature_usage_patterns\",\"communication_"
                            "patterns\","
                            "\"support_patterns\",\"anomalies\"],\"properties\":{"
                            "\"analysis_scope\":" T_("string") ",\"scope_filter\":" T_(
                                "objec"
                                "t") ","
                                     "\"lookback_period_days\":" T_(
                                         "integer") ",\"customers_analyzed\":" T_("integer") ",\"id"
                                                                                             "entif"
                                                                                             "ied_"
                                                                                             "patte"
                                                                                             "rns\""
                                                                                             ":{"
                                                                                             "\"typ"
                                                                                             "e\":"
                                                                                             "\"arr"
                                                                                             "ay\","
                                                                                             "\"ite"
                                                                                             "ms\":"
                                                                                             "{\"ty"
                                                                                             "pe\":"
                                                                                             "\"obj"
                                                                                             "ect\""
                                                                                             ","
                                                                                             "\"req"
                                                                                             "uired"
                                                                                             "\":["
                                                                                             "\"pat"
                                                                                             "tern"
                                                                                             "\","
                                                                                             "\"acc"
                                                                                             "ounts"
                                                                                             "\","
                                                                                             "\"pre"
                                                                                             "valen"
                                                                                             "ce\"]"
                                                                                             "}},"
                                                                                             "\"dec"
                                                                                             "linin"
                                                                                             "g_"
                                                                                             "accou"
                                                                                             "nts\""
                                                                                             ":" T_("array") ",\"temporal_patterns\":" NULLABLE("object") ",\"feature_usage_patterns\":" NULLABLE("object") ",\"communication_patterns\":" NULLABLE(
                                                                                                 "o"
                                                                                                 "b"
                                                                                                 "j"
                                                                                                 "e"
                                                                                                 "c"
                                                                                                 "t") ",\"support_patterns\":" NULLABLE("object") ","
                                                                                                                                                  "\"anomalies\":{\"type\":[\"array\",\"null\"],\"items\":{\"type\":\"object\","
                                                                                                                                                  "\"required\":[\"client_id\",\"day\",\"value\",\"expected\",\"z_score\",\"kind\"]}}}}",
                        .hints = TOOL_HINT_READONLY | TOOL_HINT_IDEMPOTENT,
                        .scope = TOOL_SCOPE_READ,
                        .handler = tool_sql_handler,
                        .sql = "SELECT csmcp.tool_analyze_engagement_patterns($1::jsonb, $2)",
                    },
};
const size_t tools_health_n = sizeof(tools_health) / sizeof(tools_health[0]);
