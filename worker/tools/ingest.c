/*
 * tools/ingest.c - the ingest category: ingest_usage_events, the way real product data flows
 * in from an application (batch of up to 1,000 events per call).
 *
 * One SQL function (db/migrations/0007_ingest.sql): the whole batch is validated first and
 * either stored completely or not at all (an invalid event fails the call and names every bad
 * event, up to 10); storage is idempotent by event_id, so a client retries a batch after a
 * "temporarily unavailable" answer without double counting; the daily and per-feature rollups
 * are maintained incrementally in the same transaction.
 */
#include "tool.h"

#include "tools_schema.h"

const struct tool_def tools_ingest[] = {
    {
        .name = "ingest_usage_events",
        .title = "Ingest product usage events",
        .description =
            "Stores a batch of 1 to 1000 product usage events (event_id, client_id, occurred_at, "
            "user, feature, optional quantity). Idempotent by event_id: an event already stored "
            "is counted as a duplicate and ignored, so a batch may be retried safely. Either the "
            "whole batch is valid and stored, or nothing is stored and the error names the bad "
            "events. Updates daily active users, events and feature adoption, which the usage "
            "and engagement health components read. Unknown feature ids are registered.",
        .input_schema =
            "{\"type\":\"object\",\"additionalProperties\":false,\"required\":[\"events\"],"
            "\"properties\":{\"events\":{\"type\":\"array\",\"minItems\":1,\"maxItems\":1000,"
            "\"items\":{\"type\":\"object\",\"additionalProperties\":false,"
            "\"required\":[\"event_id\",\"client_id\",\"occurred_at\",\"feature\"],"
            "\"anyOf\":[{\"required\":[\"user_id\"]},{\"required\":[\"user\"]}],"
            "\"properties\":{"
            "\"event_id\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":200,"
            "\"description\":\"unique id from the producer; the idempotency key\"},"
            "\"client_id\":" S_CLIENT_ID_PROP ","
            "\"occurred_at\":{\"type\":\"string\",\"format\":\"date-time\",\"description\":"
            "\"ISO 8601 timestamp, at most 1 day in the future and 5 years in the past\"},"
            "\"user_id\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":200,"
            "\"description\":\"the product user (any stable id)\"},"
            "\"user\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":200,"
            "\"description\":\"alias of user_id\"},"
            "\"feature\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":100,"
            "\"pattern\":\"^[A-Za-z0-9_.:-]+$\"},"
            "\"quantity\":{\"type\":\"number\",\"minimum\":0,\"maximum\":1000000000,"
            "\"default\":1}}}}}}",
        .output_schema =
            "{\"type\":\"object\",\"required\":[\"received\",\"inserted\",\"duplicates\","
            "\"features_registered\",\"accounts_affected\",\"days_affected\",\"first_event_at\","
            "\"last_event_at\"],\"properties\":{"
            "\"received\":{\"type\":\"integer\"},\"inserted\":{\"type\":\"integer\"},"
            "\"duplicates\":{\"type\":\"integer\"},\"features_registered\":{\"type\":\"integer\"},"
            "\"accounts_affected\":{\"type\":\"integer\"},\"days_affected\":{\"type\":\"integer\"},"
            "\"first_event_at\":{\"type\":[\"string\",\"null\"]},"
            "\"last_event_at\":{\"type\":[\"string\",\"null\"]}}}",
        .hints = TOOL_HINT_IDEMPOTENT,
        .scope = TOOL_SCOPE_WRITE,
        .handler = tool_sql_handler,
        .sql = "SELECT csmcp.tool_ingest_usage_events($1::jsonb, $2)",
    },
};
const size_t tools_ingest_n = sizeof(tools_ingest) / sizeof(tools_ingest[0]);
