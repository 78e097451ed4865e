/*
 * sup_report.c - what csmcpd reports about itself: the status text and worker lines of
 * `csmcpctl status|workers`, and the Prometheus text of /metrics (supervisor gauges and
 * counters, totals over live and exited workers, per-worker series).
 *
 * Invariants: read-only over the core's state (sup_view); runs on the supervisor's loop
 * between events, so what it reads is consistent; never blocks (the front end, sup_ctl.c,
 * buffers the text and writes it out).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "csmcp_build.h"
#include "ctl_codec.h"
#include "handoff.h"
#include "slots.h"
#include "sup.h"
#include "sup_int.h"
#include "sup_metrics.h"

static void fmt_dur(char *buf, size_t len, int64_t ms)
{
    int64_t s = ms / 1000;
    if (s < 60)
        snprintf(buf, len, "%.1fs", (double)ms / 1000.0);
    else if (s < 3600)
        snprintf(buf, len, "%lldm%02llds", (long long)(s / 60), (long long)(s % 60));
    else
        snprintf(buf, len, "%lldh%02lldm", (long long)(s / 3600), (long long)(s % 3600 / 60));
}

static int cmp_worker(const void *a, const void *b)
{
    const struct slots_worker *x = *(struct slots_worker *const *)a,
                              *y = *(struct slots_worker *const *)b;
    if (x->gen != y->gen)
        return x->gen > y->gen ? -1 : 1;
    return x->slot - y->slot;
}

/* Live workers sorted newest generation first, then slot; caller frees. */
static struct slots_worker **sorted_workers(int *n)
{
    struct sup_view V;
    sup_view(&V);
    struct slots_worker **v;
    int k = 0;

    for (struct slots_worker *w = V.slots->workers; w; w = w->next)
        k++;
    v = calloc((size_t)k + 1, sizeof(*v));
    if (!v) {
        *n = 0;
        return NULL;
    }
    k = 0;
    for (struct slots_worker *w = V.slots->workers; w; w = w->next)
        v[k++] = w;
    qsort(v, (size_t)k, sizeof(*v), cmp_worker);
    *n = k;
    return v;
}

/* The monitor's leader gauge from its last snapshot: 1 leader, 0 follower, -1 unknown. */
static int monitor_leader_state(const struct wio *io)
{
    struct ctl_series x;
    size_t off = 0;
    if (!io || !io->snap)
        return -1;
    while (ctl_snap_next(io->snap, io->snap_len, &off, &x) == 1)
        if (x.kind == CTL_M_GAUGE && strcmp(x.name, "csmcp_monitor_leader") == 0)
            return x.gauge > 0.5 ? 1 : 0;
    return -1;
}

void sup_write_status(FILE *f)
{
    struct sup_view V;
    sup_view(&V);
    int64_t now = sup_now_ms();
    char up[32], wup[32], hb[32];
    int n;
    struct slots_worker **v = sorted_workers(&n);
    const struct slots *s = V.slots;

    fmt_dur(up, sizeof(up), now - V.started_ms);
    fprintf(f, "csmcpd %s  pid %d  up %s  config %s\n", CSMCP_VERSION, (int)V.pid, up, V.cfg_path);
    fprintf(f, "generation %u  workers %d/%d ready  state %s%s\n", s->gen, sup_ready_in_gen(s->gen),
            s->nslots,
            s->shutdown ? (s->shutdown == 2 ? "stopping (fast)" : "draining")
                        : (s->reloading ? "reloading" : "running"),
            s->crash_loop ? "  CRASH LOOP" : "");
    fprintf(f, "crash loop: %s  crashes %llu  watchdog kills %llu  reloads ok %llu failed %llu\n",
            s->crash_loop ? "YES" : "no", (unsigned long long)s->crashes_total,
            (unsigned long long)s->timeouts_total, (unsigned long long)s->reloads_ok,
            (unsigned long long)(s->reloads_failed + V.reloads_rejected));
    fprintf(f, "\n%-5s %-5s %-8s %-9s %-9s %-9s %-8s %s\n", "SLOT", "GEN", "PID", "STATE", "UPTIME",
            "RESTARTS", "HB_AGE", "CONNS");
    for (int i = 0; i < n; i++) {
        const struct slots_worker *w = v[i];
        const struct wio *io = w->io;
        uint64_t restarts = w->gen == s->gen && w->slot < SLOTS_MAX ? s->slot[w->slot].restarts : 0;
        fmt_dur(wup, sizeof(wup), now - w->started_ms);
        fmt_dur(hb, sizeof(hb), now - w->last_hb_ms);
        fprintf(f, "%-5d %-5u %-8d %-9s %-9s %-9llu %-8s %u%s\n", w->slot, w->gen, (int)w->pid,
                slots_state_name(w->state), wup, (unsigned long long)restarts, hb,
                io ? io->conns : 0, io && io->monitor ? "  monitor" : "");
    }
    for (int i = 0; i < n; i++) {
        const struct wio *io = v[i]->io;
        if (io && io->monitor && v[i]->state != SLOTS_DRAINING) {
            int l = monitor_leader_state(io);
            fprintf(f, "monitor: pid %d %s\n", (int)v[i]->pid,
                    l == 1   ? "leader (holds the monitor leader lock)"
                    : l == 0 ? "follower (another host leads, or waiting for the database)"
                             : "starting");
        }
    }
    /* issue 26: an operator who chose drop must see it wherever the server is looked at */
    if (V.cfg && V.cfg->audit_on_failure) {
        bool drop = strcmp(V.cfg->audit_on_failure, "drop") == 0;
        bool spool = V.cfg->audit_spool_dir && V.cfg->audit_spool_dir[0];
        fprintf(f, "audit: on_failure %s%s%s%s\n", V.cfg->audit_on_failure,
                drop    ? "  (WARNING: tool calls may be answered without an audit record)"
                : spool ? "  (no tool call is answered before its audit record is fsynced in the "
                          "local spool or committed; spool "
                        : "  (no tool call is answered before its audit record is committed)",
                !drop && spool ? V.cfg->audit_spool_dir : "", !drop && spool ? ")" : "");
    }
    for (int i = 0; i < s->nslots && !s->shutdown; i++)
        if (!s->slot[i].cur && s->slot[i].pending)
            fprintf(f, "%-5d %-5u %-8s %-9s respawn in %lld ms (failure %u)\n", i, s->gen, "-",
                    "WAITING", (long long)(s->slot[i].next_spawn_ms - now), s->slot[i].failures);
    free(v);
}

void sup_write_workers(FILE *f)
{
    struct sup_view V;
    sup_view(&V);
    int64_t now = sup_now_ms();
    int n;
    struct slots_worker **v = sorted_workers(&n);
    const struct slots *s = V.slots;

    for (int i = 0; i < n; i++) {
        const struct slots_worker *w = v[i];
        const struct wio *io = w->io;
        uint64_t restarts = w->gen == s->gen && w->slot < SLOTS_MAX ? s->slot[w->slot].restarts : 0;
        fprintf(f,
                "slot=%d gen=%u pid=%d state=%s uptime=%.3f restarts=%llu hb_age=%.3f conns=%u "
                "current=%s role=%s%s\n",
                w->slot, w->gen, (int)w->pid, slots_state_name(w->state),
                (double)(now - w->started_ms) / 1000.0, (unsigned long long)restarts,
                (double)(now - w->last_hb_ms) / 1000.0, io ? io->conns : 0,
                w->gen == s->gen && w->slot < s->nslots && s->slot[w->slot].cur == w ? "yes" : "no",
                io && io->monitor ? "monitor" : "worker",
                !(io && io->monitor)            ? ""
                : monitor_leader_state(io) == 1 ? " leader=yes"
                : monitor_leader_state(io) == 0 ? " leader=no"
                                                : " leader=unknown");
    }
    free(v);
}

bool sup_is_ready(void)
{
    struct sup_view V;
    sup_view(&V);
    return !V.slots->shutdown && slots_all_ready(V.slots);
}

void sup_write_metrics(FILE *f)
{
    struct sup_view V;
    sup_view(&V);
    const struct slots *s = V.slots;
    int64_t now = sup_now_ms();
    struct supm_table total;
    static const char *const states[] = {"spawning", "ready", "draining"};

    fprintf(f,
            "# HELP csmcp_build_info Version of csmcpd (always 1).\n# TYPE csmcp_build_info "
            "gauge\ncsmcp_build_info{version=\"%s\"} 1\n",
            CSMCP_VERSION);
    fprintf(f,
            "# HELP csmcp_supervisor_generation Configuration generation served.\n# TYPE "
            "csmcp_supervisor_generation gauge\ncsmcp_supervisor_generation %u\n",
            s->gen);
    fprintf(f,
            "# HELP csmcp_supervisor_uptime_seconds Seconds since csmcpd started.\n# TYPE "
            "csmcp_supervisor_uptime_seconds gauge\n"
            "csmcp_supervisor_uptime_seconds %.3f\n",
            (double)(now - V.started_ms) / 1000.0);
    fprintf(f,
            "# HELP csmcp_supervisor_ready 1 when every slot has a READY worker and no shutdown "
            "runs.\n# TYPE csmcp_supervisor_ready gauge\ncsmcp_supervisor_ready %d\n",
            sup_is_ready() ? 1 : 0);
    fprintf(f, "# HELP csmcp_workers Worker processes by state.\n# TYPE csmcp_workers gauge\n");
    for (int i = 0; i < 3; i++)
        fprintf(f, "csmcp_workers{state=\"%s\"} %d\n", states[i],
                slots_count_state(s, (enum slots_state)i));
    fprintf(f,
            "# HELP csmcp_workers_configured server.workers of the current generation.\n# TYPE "
            "csmcp_workers_configured gauge\ncsmcp_workers_configured %d\n",
            s->nslots);
    fprintf(f,
            "# HELP csmcp_crash_loop 1 while server.crash_limit failures fall within "
            "server.crash_window.\n# TYPE csmcp_crash_loop gauge\ncsmcp_crash_loop %d\n",
            s->crash_loop ? 1 : 0);
    fprintf(f,
            "# HELP csmcp_worker_spawns_total Worker processes started.\n# TYPE "
            "csmcp_worker_spawns_total counter\ncsmcp_worker_spawns_total %llu\n",
            (unsigned long long)s->spawns_total);
    fprintf(f,
            "# HELP csmcp_worker_crashes_total Workers that died or failed to start outside a "
            "drain.\n# TYPE csmcp_worker_crashes_total counter\ncsmcp_worker_crashes_total %llu\n",
            (unsigned long long)s->crashes_total);
    fprintf(f,
            "# HELP csmcp_worker_timeouts_total Workers killed by the heartbeat watchdog.\n# TYPE "
            "csmcp_worker_timeouts_total counter\ncsmcp_worker_timeouts_total %llu\n",
            (unsigned long long)s->timeouts_total);
    fprintf(f,
            "# HELP csmcp_reloads_total Reloads by result (failed: refused, invalid or rolled "
            "back).\n# TYPE csmcp_reloads_total counter\ncsmcp_reloads_total{result=\"ok\"} %llu\n"
            "csmcp_reloads_total{result=\"failed\"} %llu\n",
            (unsigned long long)s->reloads_ok,
            (unsigned long long)(s->reloads_failed + V.reloads_rejected));
    fprintf(f,
            "# HELP csmcp_supervisor_handoff_connections_total Idle connections handed up by "
            "workers draining for a reload, by outcome (forwarded to a worker of the current "
            "generation, or dropped: closed).\n# TYPE csmcp_supervisor_handoff_connections_total "
            "counter\ncsmcp_supervisor_handoff_connections_total{result=\"forwarded\"} %llu\n"
            "csmcp_supervisor_handoff_connections_total{result=\"dropped\"} %llu\n",
            (unsigned long long)handoff_forwarded_total(),
            (unsigned long long)handoff_dropped_total());
    fprintf(f, "# HELP csmcp_slot_restarts_total Crash restarts per slot.\n# TYPE "
               "csmcp_slot_restarts_total counter\n");
    for (int i = 0; i < s->nslots; i++)
        fprintf(f, "csmcp_slot_restarts_total{slot=\"%d\"} %llu\n", i,
                (unsigned long long)s->slot[i].restarts);
    fprintf(f, "# HELP csmcp_worker_up One series per live worker process.\n# TYPE csmcp_worker_up "
               "gauge\n");
    for (const struct slots_worker *w = s->workers; w; w = w->next)
        fprintf(f, "csmcp_worker_up{slot=\"%d\",pid=\"%d\",generation=\"%u\",state=\"%s\"} 1\n",
                w->slot, (int)w->pid, w->gen, slots_state_name(w->state));
    fprintf(f, "# HELP csmcp_worker_heartbeat_age_seconds Seconds since the worker's last "
               "heartbeat.\n# TYPE csmcp_worker_heartbeat_age_seconds gauge\n");
    for (const struct slots_worker *w = s->workers; w; w = w->next)
        fprintf(f, "csmcp_worker_heartbeat_age_seconds{slot=\"%d\",pid=\"%d\"} %.3f\n", w->slot,
                (int)w->pid, (double)(now - w->last_hb_ms) / 1000.0);
    fprintf(f, "# HELP csmcp_worker_loop_lag_seconds Event-loop lag measured by the worker.\n# "
               "TYPE csmcp_worker_loop_lag_seconds gauge\n");
    for (const struct slots_worker *w = s->workers; w; w = w->next) {
        const struct wio *io = w->io;
        fprintf(f, "csmcp_worker_loop_lag_seconds{slot=\"%d\",pid=\"%d\"} %.6f\n", w->slot,
                (int)w->pid, io ? (double)io->lag_us / 1e6 : 0.0);
    }

    /* Totals: retired workers' counters + every live worker's snapshot. */
    if (supm_copy(&total, V.retired) == 0) {
        for (const struct slots_worker *w = s->workers; w; w = w->next) {
            const struct wio *io = w->io;
            if (io && io->snap)
                supm_fold(&total, io->snap, io->snap_len, false);
        }
        supm_render(f, &total, "Worker metric, summed over live and exited workers.");
        supm_free(&total);
    }
    /* Per worker, renamed csmcp_worker_* with slot and pid labels, in one table so each
     * family gets a single # TYPE line and contiguous series. */
    {
        struct supm_table per;
        memset(&per, 0, sizeof(per));
        for (const struct slots_worker *w = s->workers; w; w = w->next) {
            const struct wio *io = w->io;
            char lbl[64];
            if (!io || !io->snap)
                continue;
            snprintf(lbl, sizeof(lbl), "slot=\"%d\",pid=\"%d\"", w->slot, (int)w->pid);
            supm_fold_as_worker(&per, io->snap, io->snap_len, lbl);
        }
        supm_render(f, &per, "Worker metric, per live worker process.");
        supm_free(&per);
    }
}
