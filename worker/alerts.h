/*
 * alerts.h - the monitors' alerts as MCP resources (worker/alerts.c): resources/read of
 * csmcp://alerts (every open alert) and csmcp://alerts/<client_id> (one account's), and
 * notifications/resources/updated to the sessions subscribed to them when an alert opens.
 */
#ifndef CSMCP_ALERTS_H
#define CSMCP_ALERTS_H

#include <stdbool.h>

struct mreq;
struct jsonrpc_msg;

/* Subscribes this worker to the csmcp:alerts Redis channel. 0 or -1. */
int alerts_init(void);
/* Answers resources/read when uri is an alerts URI (true), else leaves m alone (false). */
bool alerts_read(struct mreq *m, struct jsonrpc_msg *msg, const char *uri);

#endif
