/*
 * sse.c - SSE framing. Invariant: every frame ends with a blank line, so a reader never sees a
 * partial event joined to the next one.
 */
#include "sse.h"

void sse_event(struct jbuf *b, const char *id, const char *data, size_t len)
{
    if (id) {
        jbuf_puts(b, "id: ");
        jbuf_puts(b, id);
        jbuf_putc(b, '\n');
    }
    jbuf_puts(b, "event: message\ndata: ");
    jbuf_append(b, data, len);
    jbuf_puts(b, "\n\n");
}

void sse_priming(struct jbuf *b, const char *id, int retry_ms)
{
    jbuf_puts(b, "id: ");
    jbuf_puts(b, id);
    jbuf_putc(b, '\n');
    if (retry_ms >= 0)
        jbuf_printf(b, "retry: %d\n", retry_ms);
    jbuf_puts(b, "data: \n\n");
}

void sse_comment(struct jbuf *b, const char *text)
{
    jbuf_puts(b, ": ");
    jbuf_puts(b, text);
    jbuf_puts(b, "\n\n");
}
