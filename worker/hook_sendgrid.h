/*
 * hook_sendgrid.h - POST /hooks/sendgrid: SendGrid Event Webhook receiver (issue 16).
 */
#ifndef CSMCP_HOOK_SENDGRID_H
#define CSMCP_HOOK_SENDGRID_H

struct cfg;
struct pgpool;

/* Registers the route when integrations.sendgrid_webhook_public_key_file is set (else the path
 * stays unrouted: 404). Returns 0, or -1 when the key cannot be loaded or is not ECDSA P-256. */
int hook_sendgrid_init(const struct cfg *cfg, struct pgpool *pg);

/* Frees the loaded key (worker shutdown). */
void hook_sendgrid_free(void);

#endif
