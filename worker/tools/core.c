/*
 * tools/core.c - the core category: register_client, get_client_overview, update_client_info,
 * list_clients, get_client_timeline.
 *
 * Each tool is one SQL function (db/migrations/0004_core_tools.sql) run by tool_sql_handler:
 * one call = one transaction = one round trip. Invariants: input_schema lists every argument
 * the function reads (additionalProperties false), output_schema lists every top-level field
 * the function returns with its JSON type (nullable fields say so), so structuredContent always
 * matches it; writes are audited by the function itself (activity_log, old and new values).
 */
#include "tool.h"

#include "tools_schema.h"

#define OVERVIEW_OUT                                                                               \
    "{\"type\":\"object\",\"required\":[\"client_id\",\"basic\",\"contract\",\"health\","          \
    "\"usage\",\"support\",\"satisfaction\",\"payment\",\"renewal\",\"revenue\",\"onboarding\","   \
    "\"recent_activity\",\"risks\",\"opportunities\"],\"properties\":{"                            \
    "\"client_id\":{\"type\":\"string\"},"                                                         \
    "\"basic\":{\"type\":\"object\",\"required\":[\"client_name\",\"company_name\",\"industry\","  \
    "\"tier\",\"lifecycle_stage\",\"status\"],\"properties\":{\"client_name\":{\"type\":"          \
    "\"string\"},\"company_name\":{\"type\":\"string\"},\"industry\":{\"type\":\"string\"},"       \
    "\"tier\":{\"type\":\"string\"},\"lifecycle_stage\":{\"type\":\"string\"},\"status\":"         \
    "{\"type\":\"string\"},\"csm_assigned\":{\"type\":[\"string\",\"null\"]},"                     \
    "\"primary_contact_name\":{\"type\":[\"string\",\"null\"]},\"primary_contact_email\":"         \
    "{\"type\":[\"string\",\"null\"]},\"created_at\":{\"type\":\"string\"},\"contacts\":"          \
    "{\"type\":\"integer\"}}},"                                                                    \
    "\"contract\":{\"type\":[\"object\",\"null\"],\"description\":\"the active contract\","        \
    "\"properties\":{\"contract_id\":{\"type\":\"string\"},\"annual_value\":{\"type\":"            \
    "\"number\"},\"licensed_seats\":{\"type\":[\"integer\",\"null\"]},\"start_date\":{\"type\":"   \
    "\"string\"},\"end_date\":{\"type\":\"string\"},\"days_until_renewal\":{\"type\":"             \
    "\"integer\"}}},"                                                                              \
    "\"health\":{\"type\":\"object\",\"required\":[\"current_score\",\"trend\",\"risk_level\","    \
    "\"components\",\"history\"],\"properties\":{\"current_score\":{\"type\":\"integer\"},"        \
    "\"trend\":{\"type\":\"string\"},\"risk_level\":{\"type\":\"string\"},"                        \
    "\"last_calculated_at\":{\"type\":[\"string\",\"null\"]},\"components\":{\"type\":"            \
    "[\"object\",\"null\"]},\"history\":{\"type\":\"array\",\"items\":{\"type\":\"object\"}}}},"   \
    "\"usage\":{\"type\":\"object\",\"required\":[\"avg_daily_active_users_7d\","                  \
    "\"avg_daily_active_users_30d\",\"events_30d\",\"trend\",\"top_features_30d\"],"               \
    "\"properties\":{\"avg_daily_active_users_7d\":{\"type\":\"number\"},"                         \
    "\"avg_daily_active_users_30d\":{\"type\":\"number\"},\"seat_utilization_30d\":{\"type\":"     \
    "[\"number\",\"null\"]},\"events_30d\":{\"type\":\"integer\"},\"last_activity_date\":"         \
    "{\"type\":[\"string\",\"null\"]},\"days_since_last_activity\":{\"type\":[\"integer\","        \
    "\"null\"]},\"trend\":{\"type\":\"object\"},\"top_features_30d\":{\"type\":\"array\"}}},"      \
    "\"support\":{\"type\":\"object\",\"required\":[\"open_tickets\",\"critical_open_tickets\","   \
    "\"tickets_last_30d\"],\"properties\":{\"open_tickets\":{\"type\":\"integer\"},"               \
    "\"critical_open_tickets\":{\"type\":\"integer\"},\"tickets_last_30d\":{\"type\":"             \
    "\"integer\"},\"avg_satisfaction_rating_90d\":{\"type\":[\"number\",\"null\"]},"               \
    "\"last_ticket_at\":{\"type\":[\"string\",\"null\"]}}},"                                       \
    "\"satisfaction\":{\"type\":\"object\",\"properties\":{\"nps_90d\":{\"type\":[\"number\","     \
    "\"null\"]},\"nps_responses_90d\":{\"type\":\"integer\"},\"last_nps_score\":{\"type\":"        \
    "[\"integer\",\"null\"]},\"csat_avg_90d\":{\"type\":[\"number\",\"null\"]}}},"                 \
    "\"payment\":{\"type\":\"object\",\"properties\":{\"overdue_invoices\":{\"type\":"             \
    "\"integer\"},\"overdue_amount\":{\"type\":\"number\"},\"late_payments_12m\":{\"type\":"       \
    "\"integer\"},\"last_payment_on\":{\"type\":[\"string\",\"null\"]}}},"                         \
    "\"renewal\":{\"type\":[\"object\",\"null\"],\"properties\":{\"renewal_date\":{\"type\":"      \
    "\"string\"},\"days_until_renewal\":{\"type\":\"integer\"},\"renewal_probability\":"           \
    "{\"type\":\"number\"},\"renewal_risk_level\":{\"type\":\"string\"}}},"                        \
    "\"revenue\":{\"type\":\"object\",\"properties\":{\"current_arr\":{\"type\":\"number\"},"      \
    "\"arr_change_12m\":{\"type\":\"number\"},\"open_expansion_pipeline\":{\"type\":"              \
    "\"number\"},\"open_expansion_opportunities\":{\"type\":\"integer\"}}},"                       \
    "\"onboarding\":{\"type\":[\"object\",\"null\"]},"                                             \
    "\"recent_activity\":{\"type\":\"array\",\"items\":{\"type\":\"object\",\"required\":"         \
    "[\"timestamp\",\"type\",\"title\"]}},"                                                        \
    "\"risks\":{\"type\":\"array\",\"items\":{\"type\":\"object\",\"required\":[\"type\","         \
    "\"severity\",\"detail\"],\"properties\":{\"type\":{\"type\":\"string\"},\"severity\":"        \
    "{\"enum\":[\"low\",\"medium\",\"high\",\"critical\"]},\"detail\":{\"type\":\"string\"}}}},"   \
    "\"opportunities\":{\"type\":\"array\",\"items\":{\"type\":\"object\",\"required\":"           \
    "[\"type\",\"detail\"]}}}}"

const struct tool_def tools_core[] = {
    {
        .name = "register_client",
        .title = "Register a client account",
        .description =
            "Creates a customer account with its active contract (annual value, term, licensed "
            "seats), the primary contact and the first lifecycle stage (onboarding). The "
            "client_id is generated as cs_<unix time>_<name slug> unless given. Persisted and "
            "recorded in the activity log with the caller's identity.",
        .input_schema =
            "{\"type\":\"object\",\"additionalProperties\":false,"
            "\"required\":[\"client_name\",\"company_name\"],\"properties\":{"
            "\"client_name\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":200,"
            "\"description\":\"Display name of the account\"},"
            "\"company_name\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":200},"
            "\"industry\":{\"type\":\"string\",\"maxLength\":100,\"default\":\"Technology\"},"
            "\"contract_value\":{\"type\":\"number\",\"minimum\":0,\"maximum\":1000000000000,"
            "\"default\":0,\"description\":\"Annual contract value\"},"
            "\"contract_start_date\":{\"type\":\"string\",\"format\":\"date\","
            "\"description\":\"YYYY-MM-DD, default today\"},"
            "\"contract_end_date\":{\"type\":\"string\",\"format\":\"date\","
            "\"description\":\"YYYY-MM-DD, default start + 365 days\"},"
            "\"primary_contact_email\":{\"type\":\"string\",\"format\":\"email\"},"
            "\"primary_contact_name\":{\"type\":\"string\",\"maxLength\":200},"
            "\"tier\":{\"enum\":[\"starter\",\"standard\",\"professional\",\"enterprise\"],"
            "\"default\":\"standard\"},"
            "\"licensed_seats\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":1000000,"
            "\"description\":\"Seats on the contract (the usage score divides by it)\"},"
            "\"csm_assigned\":{\"type\":\"string\",\"maxLength\":200},"
            "\"client_id\":" S_CLIENT_ID_PROP "}}",
        .output_schema =
            "{\"type\":\"object\",\"required\":[\"status\",\"message\",\"client_id\","
            "\"client_record\",\"contract\",\"summary\",\"next_steps\"],\"properties\":{"
            "\"status\":{\"const\":\"success\"},\"message\":{\"type\":\"string\"},"
            "\"client_id\":{\"type\":\"string\"},"
            "\"client_record\":{\"type\":\"object\",\"required\":[\"client_id\",\"client_name\","
            "\"tier\",\"lifecycle_stage\",\"status\",\"health_score\"]},"
            "\"contract\":{\"type\":\"object\",\"required\":[\"contract_id\",\"contract_value\","
            "\"start_date\",\"end_date\"],\"properties\":{\"contract_id\":{\"type\":\"string\"},"
            "\"contract_value\":{\"type\":\"number\"},\"licensed_seats\":{\"type\":[\"integer\","
            "\"null\"]},\"start_date\":{\"type\":\"string\"},\"end_date\":{\"type\":\"string\"}}},"
            "\"summary\":{\"type\":\"object\",\"required\":[\"tier\",\"contract_value\","
            "\"contract_term_days\",\"days_until_renewal\",\"lifecycle_stage\"]},"
            "\"next_steps\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}}}}",
        .hints = 0,
        .scope = TOOL_SCOPE_WRITE,
        .handler = tool_sql_handler,
        .sql = "SELECT csmcp.tool_register_client($1::jsonb, $2)",
    },
    {
        .name = "get_client_overview",
        .title = "Client 360-degree overview",
        .description =
            "One account in full, every figure computed from stored rows: basic data, the "
            "active contract, health (current score, trend, risk level, last components, the "
            "last 10 scores), usage (average daily active users over 7 and 30 days, seat "
            "utilisation, events, last activity, usage trend, top features), support (open and "
            "critical tickets, 30-day volume, ticket satisfaction), satisfaction (90-day NPS, "
            "CSAT), payment (overdue and late invoices), renewal (date, probability by health: "
            ">=80 0.90, >=60 0.70, else 0.40), revenue, onboarding, the 10 most recent events, "
            "and risks and opportunities derived from those figures.",
        .input_schema = "{\"type\":\"object\",\"additionalProperties\":false,"
                        "\"required\":[\"client_id\"],\"properties\":{"
                        "\"client_id\":" S_CLIENT_ID_PROP "}}",
        .output_schema = OVERVIEW_OUT,
        .hints = TOOL_HINT_READONLY | TOOL_HINT_IDEMPOTENT,
        .scope = TOOL_SCOPE_READ,
        .handler = tool_sql_handler,
        .sql = "SELECT csmcp.tool_get_client_overview($1::jsonb, $2)",
    },
    {
        .name = "update_client_info",
        .title = "Update client information",
        .description =
            "Patches account fields (client_name, company_name, industry, tier, csm_assigned, "
            "status, primary_contact_email, primary_contact_name) and fields of the active "
            "contract (contract_value, contract_start_date, contract_end_date, licensed_seats). "
            "Only values that really change are written; the previous and new values are "
            "returned and recorded in the activity log with the caller's identity. A contract "
            "value change is recorded as an expansion or contraction revenue event.",
        .input_schema =
            "{\"type\":\"object\",\"additionalProperties\":false,"
            "\"required\":[\"client_id\",\"updates\"],\"properties\":{"
            "\"client_id\":" S_CLIENT_ID_PROP ","
            "\"updates\":{\"type\":\"object\",\"minProperties\":1,\"additionalProperties\":false,"
            "\"properties\":{"
            "\"client_name\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":200},"
            "\"company_name\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":200},"
            "\"industry\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":100},"
            "\"tier\":{\"enum\":[\"starter\",\"standard\",\"professional\",\"enterprise\"]},"
            "\"csm_assigned\":{\"type\":[\"string\",\"null\"],\"maxLength\":200},"
            "\"status\":{\"enum\":[\"active\",\"paused\",\"churned\",\"pending\"]},"
            "\"primary_contact_email\":{\"type\":\"string\",\"format\":\"email\"},"
            "\"primary_contact_name\":{\"type\":\"string\",\"maxLength\":200},"
            "\"contract_value\":{\"type\":\"number\",\"minimum\":0,\"maximum\":1000000000000},"
            "\"contract_start_date\":{\"type\":\"string\",\"format\":\"date\"},"
            "\"contract_end_date\":{\"type\":\"string\",\"format\":\"date\"},"
            "\"licensed_seats\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":1000000}}}}}",
        .output_schema =
            "{\"type\":\"object\",\"required\":[\"status\",\"message\",\"client_id\","
            "\"updated_fields\",\"previous_values\",\"new_values\",\"updated_record\",\"audit\"],"
            "\"properties\":{\"status\":{\"const\":\"success\"},\"message\":{\"type\":\"string\"},"
            "\"client_id\":{\"type\":\"string\"},"
            "\"updated_fields\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}},"
            "\"previous_values\":{\"type\":\"object\"},\"new_values\":{\"type\":\"object\"},"
            "\"updated_record\":{\"type\":\"object\"},"
            "\"audit\":{\"type\":\"object\",\"required\":[\"updated_at\",\"updated_by\"],"
            "\"properties\":{\"updated_at\":{\"type\":\"string\"},\"updated_by\":{\"type\":"
            "\"string\"},\"activity_id\":{\"type\":[\"integer\",\"null\"]}}}}}",
        .hints = TOOL_HINT_IDEMPOTENT,
        .scope = TOOL_SCOPE_WRITE,
        .handler = tool_sql_handler,
        .sql = "SELECT csmcp.tool_update_client_info($1::jsonb, $2)",
    },
    {
        .name = "list_clients",
        .title = "List clients",
        .description =
            "Lists accounts with filters (tier, lifecycle stage, health range, industry, CSM, "
            "name search, renewal within N days), sorting and pagination. The summary (count, "
            "average health, total ARR of active contracts, average daily active users over 7 "
            "days, lifecycle and tier breakdowns) covers the whole filtered set, not the page.",
        .input_schema =
            "{\"type\":\"object\",\"additionalProperties\":false,\"properties\":{"
            "\"tier_filter\":{\"enum\":[\"starter\",\"standard\",\"professional\",\"enterprise\"]},"
            "\"lifecycle_stage_filter\":{\"enum\":[\"onboarding\",\"active\",\"at_risk\","
            "\"churned\",\"expansion\",\"renewal\"]},"
            "\"health_score_min\":{\"type\":\"integer\",\"minimum\":0,\"maximum\":100},"
            "\"health_score_max\":{\"type\":\"integer\",\"minimum\":0,\"maximum\":100},"
            "\"industry_filter\":{\"type\":\"string\",\"maxLength\":100},"
            "\"csm_filter\":{\"type\":\"string\",\"maxLength\":200},"
            "\"search\":{\"type\":\"string\",\"maxLength\":200,\"description\":\"substring of "
            "the client or company name, case-insensitive\"},"
            "\"renewal_within_days\":{\"type\":\"integer\",\"minimum\":0,\"maximum\":3650},"
            "\"sort_by\":{\"enum\":[\"client_id\",\"client_name\",\"health_score\","
            "\"contract_value\",\"days_until_renewal\"],\"default\":\"client_id\"},"
            "\"sort_order\":{\"enum\":[\"asc\",\"desc\"],\"default\":\"asc\"},"
            "\"limit\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":1000,\"default\":50},"
            "\"offset\":{\"type\":\"integer\",\"minimum\":0,\"default\":0}}}",
        .output_schema =
            "{\"type\":\"object\",\"required\":[\"clients\",\"pagination\",\"filters_applied\","
            "\"summary\"],\"properties\":{"
            "\"clients\":{\"type\":\"array\",\"items\":{\"type\":\"object\",\"required\":"
            "[\"client_id\",\"client_name\",\"tier\",\"lifecycle_stage\",\"health_score\","
            "\"health_trend\",\"contract_value\",\"days_until_renewal\",\"active_users\","
            "\"support_tickets_open\"],\"properties\":{\"client_id\":{\"type\":\"string\"},"
            "\"client_name\":{\"type\":\"string\"},\"tier\":{\"type\":\"string\"},"
            "\"lifecycle_stage\":{\"type\":\"string\"},\"health_score\":{\"type\":\"integer\"},"
            "\"health_trend\":{\"type\":\"string\"},\"contract_value\":{\"type\":[\"number\","
            "\"null\"]},\"days_until_renewal\":{\"type\":[\"integer\",\"null\"]},"
            "\"csm_assigned\":{\"type\":[\"string\",\"null\"]},\"active_users\":{\"type\":"
            "\"number\"},\"support_tickets_open\":{\"type\":\"integer\"}}}},"
            "\"pagination\":{\"type\":\"object\",\"required\":[\"total_count\",\"limit\","
            "\"offset\",\"returned_count\",\"has_more\"],\"properties\":{\"total_count\":"
            "{\"type\":\"integer\"},\"limit\":{\"type\":\"integer\"},\"offset\":{\"type\":"
            "\"integer\"},\"returned_count\":{\"type\":\"integer\"},\"has_more\":{\"type\":"
            "\"boolean\"}}},"
            "\"filters_applied\":{\"type\":\"object\"},"
            "\"summary\":{\"type\":\"object\",\"required\":[\"total_clients\","
            "\"average_health_score\",\"total_arr\",\"total_active_users\","
            "\"lifecycle_breakdown\",\"tier_breakdown\"],\"properties\":{\"total_clients\":"
            "{\"type\":\"integer\"},\"average_health_score\":{\"type\":[\"number\",\"null\"]},"
            "\"total_arr\":{\"type\":\"number\"},\"total_active_users\":{\"type\":\"number\"},"
            "\"lifecycle_breakdown\":{\"type\":\"object\"},\"tier_breakdown\":{\"type\":"
            "\"object\"}}}}}",
        .hints = TOOL_HINT_READONLY | TOOL_HINT_IDEMPOTENT,
        .scope = TOOL_SCOPE_READ,
        .handler = tool_sql_handler,
        .sql = "SELECT csmcp.tool_list_clients($1::jsonb, $2)",
    },
    {
        .name = "get_client_timeline",
        .title = "Client timeline",
        .description =
            "Chronological events of one account from every table: account changes, lifecycle "
            "transitions, tickets opened and resolved, escalations, health scores and alerts, "
            "feature adoption, communications and executive reviews, onboarding, contracts and "
            "invoices, renewals and revenue events, NPS and feedback. Newest first; the date "
            "range (default the last 90 days) and event type filters are applied before the "
            "limit; the summary counts the whole filtered range.",
        .input_schema =
            "{\"type\":\"object\",\"additionalProperties\":false,\"required\":[\"client_id\"],"
            "\"properties\":{\"client_id\":" S_CLIENT_ID_PROP ","
            "\"start_date\":{\"type\":\"string\",\"format\":\"date\",\"description\":"
            "\"YYYY-MM-DD, default end_date - 90 days\"},"
            "\"end_date\":{\"type\":\"string\",\"format\":\"date\",\"description\":"
            "\"YYYY-MM-DD (inclusive), default today\"},"
            "\"event_types\":{\"type\":\"array\",\"uniqueItems\":true,\"items\":{\"enum\":"
            "[\"account\",\"onboarding\",\"support\",\"usage\",\"health\",\"communication\","
            "\"renewal\",\"product\",\"contract\",\"feedback\",\"lifecycle\"]}},"
            "\"limit\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":1000,\"default\":100}}}",
        .output_schema =
            "{\"type\":\"object\",\"required\":[\"client_id\",\"timeline\",\"summary\"],"
            "\"properties\":{\"client_id\":{\"type\":\"string\"},"
            "\"timeline\":{\"type\":\"array\",\"items\":{\"type\":\"object\",\"required\":"
            "[\"event_id\",\"timestamp\",\"event_type\",\"title\",\"description\",\"metadata\"],"
            "\"properties\":{\"event_id\":{\"type\":\"string\"},\"timestamp\":{\"type\":"
            "\"string\"},\"event_type\":{\"type\":\"string\"},\"title\":{\"type\":\"string\"},"
            "\"description\":{\"type\":\"string\"},\"metadata\":{\"type\":\"object\"}}}},"
            "\"summary\":{\"type\":\"object\",\"required\":[\"total_events\",\"returned_events\","
            "\"date_range\",\"event_type_breakdown\"],\"properties\":{\"total_events\":{\"type\":"
            "\"integer\"},\"returned_events\":{\"type\":\"integer\"},\"date_range\":{\"type\":"
            "\"object\"},\"event_types\":{\"type\":\"array\"},\"event_type_breakdown\":{\"type\":"
            "\"object\"}}}}}",
        .hints = TOOL_HINT_READONLY | TOOL_HINT_IDEMPOTENT,
        .scope = TOOL_SCOPE_READ,
        .handler = tool_sql_handler,
        .sql = "SELECT csmcp.tool_get_client_timeline($1::jsonb, $2)",
    },
};
const size_t tools_core_n = sizeof(tools_core) / sizeof(tools_core[0]);
