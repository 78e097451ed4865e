/*
 * tools/tools_schema.h - JSON Schema fragments shared by the data tool tables (core.c,
 * health.c, ingest.c), so one rule (e.g. what a client_id looks like) is written once.
 */
#ifndef CSMCP_TOOLS_SCHEMA_H
#define CSMCP_TOOLS_SCHEMA_H

/* An account id: letters, digits, '_' and '-', 1..100 characters (accounts.client_id CHECK). */
#define S_CLIENT_ID_PROP                                                                           \
    "{\"type\":\"string\",\"minLength\":1,\"maxLength\":100,\"pattern\":\"^[A-Za-z0-9_-]+$\","     \
    "\"description\":\"Account id, e.g. cs_1732600000_acme_corp\"}"

#endif
