/*
 * sup_int.h - private to csmcpd's own files (csmcpd.c, handoff.c, sup_report.c): the
 * per-worker I/O state, the clock, and the read-only view of the supervisor core that the
 * reports use. Calls run one way: csmcpd.c -> handoff.c; sup_report.c -> csmcpd.c (sup_view,
 * sup_ready_in_gen) and handoff.c (counters). The one cycle is csmcpd.c <-> sup_ctl.c, the
 * control front end (sup.h).
 */
#ifndef CSMCP_SUP_INT_H
#define CSMCP_SUP_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

struct event;
struct slots;
struct supm_table;

/* Per-worker I/O state, owned by csmcpd.c (slots_worker.io). */
struct wio {
    int fd;
    struct event *ev;
    uint8_t *snap;
    size_t snap_len;
    uint32_t conns;
    uint32_t lag_us;
    uint32_t seq;
    bool trunc_warned;
    bool adopts;  /* HELLO said CTL_HELLO_F_ADOPT */
    bool monitor; /* runs the monitor role (csmcp-worker --role monitor) */
};

/* What the reports read of the core (csmcpd.c). Borrowed; valid until the next event. */
struct cfg;

struct sup_view {
    const struct slots *slots;
    const struct supm_table *retired; /* counters of exited workers */
    const char *cfg_path;
    const struct cfg *cfg; /* the current generation's configuration */
    pid_t pid;
    int64_t started_ms;
    uint64_t reloads_rejected; /* invalid config or refused */
};
void sup_view(struct sup_view *out);

/* CLOCK_MONOTONIC in milliseconds: the supervisor's one clock. */
static inline int64_t sup_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
/* READY workers of generation gen. */
int sup_ready_in_gen(uint32_t gen);

#endif
