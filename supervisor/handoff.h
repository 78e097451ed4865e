/*
 * handoff.h - the supervisor's side of the reload connection handoff: idle client connections
 * handed up by workers draining for a reload are passed on to READY workers of the current
 * generation (supervisor/handoff.c).
 */
#ifndef CSMCP_HANDOFF_H
#define CSMCP_HANDOFF_H

#include <stdint.h>

struct event_base;
struct slots;
struct slots_worker;

/* Arms the retry timer. slots is borrowed for the supervisor's life. 0 or -1. */
int handoff_init(struct event_base *base, const struct slots *slots);
/*
 * A batch of connections handed up by the draining worker from (n fds received; lost more
 * announced but cut by our fd limit). Passed on at once, or queued (bounded) when every
 * adopting channel is full; our copies are closed in every case once passed on or given up.
 */
void handoff_forward(const struct slots_worker *from, const int *fds, int n, int lost);
/* How many READY workers of generation gen adopt connections (up to max of them into v). */
int handoff_adopters(uint32_t gen, struct slots_worker **v, int max);
/* Closes every queued connection and frees the timer (exit path). */
void handoff_shutdown(void);
/* Closes n received fds. */
void handoff_close_fds(const int *fds, int n);
/* Connections passed on to a worker, and closed because nobody could take them. */
uint64_t handoff_forwarded_total(void);
uint64_t handoff_dropped_total(void);

#endif
