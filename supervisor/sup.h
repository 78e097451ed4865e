/*
 * sup.h - what csmcpd's front ends (sup_ctl.c: control socket and admin HTTP) may ask of the
 * supervisor core (csmcpd.c). Single-threaded: everything runs on the supervisor's event loop.
 */
#ifndef CSMCP_SUP_H
#define CSMCP_SUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

struct event_base;

/* Human-readable status (generation, slots with state/pid/uptime/restarts, crash loop). */
void sup_write_status(FILE *f);
/* One line per live worker process: key=value pairs. */
void sup_write_workers(FILE *f);
/* Prometheus text: supervisor gauges/counters, totals, per-worker series. */
void sup_write_metrics(FILE *f);
/* Every slot of the current generation READY and not shutting down. */
bool sup_is_ready(void);

/* Called with the outcome of a reload: ok, and a message ("generation 3" or the reason). */
typedef void (*sup_reload_cb)(void *arg, bool ok, const char *msg);
/*
 * Starts a reload. Returns 0 when started (cb, if not NULL, is called once with the outcome),
 * or -1 with the reason in err (invalid config, busy, shutting down; cb is not called).
 */
int sup_reload(sup_reload_cb cb, void *arg, char *err, size_t errlen);
/* Forgets a pending callback (its client went away). */
void sup_reload_cancel(void *arg);
/* Graceful stop, as SIGTERM. */
void sup_stop(void);

/* sup_ctl.c: control socket (line protocol) and admin HTTP listener. fds are adopted. */
int supctl_start(struct event_base *base, int ctl_fd, int admin_fd);
/* Reply "ERR shutting down" to every client waiting for a reload. */
void supctl_shutdown(void);

#endif
