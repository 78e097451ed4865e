/*
 * hook_sendgrid.h - POST /hooks/sendgrid: SendGrid Event Webhook receiver (issue 16).
 */
#ifndef CSMCP_HOOK_SENDGRID_H
#define CSMCP_HOOK_SENDGRID_H

struct cfg;
struct pgpool;

/* Registers the route when integrations.sendgrid_webhook_secret_file is set (else the path stays
 * unrouted: 404). Returns 0, or -1 when the secret cannot be loaded. */
int hook_sendgrid_init(const struct cfg *cfg, struct pgpool *pg);

#endif
