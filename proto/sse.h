/*
 * sse.h - Server-Sent Events framing for Streamable HTTP (text/event-stream).
 */
#ifndef CSMCP_SSE_H
#define CSMCP_SSE_H

#include <stddef.h>

#include "json.h"

/* "id: ID\nevent: message\ndata: DATA\n\n" (id omitted when NULL). data must not contain a
 * newline (compact JSON never does). */
void sse_event(struct jbuf *b, const char *id, const char *data, size_t len);
/* Priming event: "id: ID\nretry: MS\ndata: \n\n" (retry omitted when retry_ms < 0). */
void sse_priming(struct jbuf *b, const char *id, int retry_ms);
/* Comment line (keep-alive): ": TEXT\n\n". */
void sse_comment(struct jbuf *b, const char *text);

#endif
