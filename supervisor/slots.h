/*
 * slots.h - the supervisor's slot table and worker state machine, free of I/O.
 *
 * Everything that touches the OS (fork+exec, kill, the control channel, metrics retirement and
 * the clock) goes through struct slots_ops and a `now` argument, so the whole policy - crash
 * restart with backoff, crash-loop detection, heartbeat watchdog, readiness-gated reload with
 * rollback, graceful and fast shutdown - runs under a fake clock in tests/unit/test_slots.c.
 *
 * Worker states: SPAWNING -> READY -> DRAINING -> EXITED (SPAWNING -> DRAINING on rollback or
 * shutdown; any -> EXITED on death). Every transition goes through one logging function.
 */
#ifndef CSMCP_SLOTS_H
#define CSMCP_SLOTS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define SLOTS_MAX        256
#define SLOTS_CRASH_RING 64
/* Older generations allowed to drain at once; a reload beyond it stops the oldest (HAProxy
 * mworker-max-reloads): a reload storm cannot pile up processes and database connections. */
#define SLOTS_MAX_DRAINING_GENS 2

enum slots_state {
    SLOTS_SPAWNING = 0,
    SLOTS_READY,
    SLOTS_DRAINING,
    SLOTS_EXITED,
};

enum slots_msg {
    SLOTS_MSG_DRAIN = 1,
    SLOTS_MSG_STOP = 2,
};

struct slots_worker {
    struct slots_worker *next;
    int slot;
    uint32_t gen;
    pid_t pid;
    enum slots_state state;
    bool hello;          /* HELLO received */
    bool timed_out;      /* watchdog fired */
    bool stopped;        /* STOP sent (rollback or fast shutdown) */
    bool handoff;        /* DRAINING for a reload: its idle connections go to the new generation */
    int kill_stage;      /* 0 none, 1 soft signal sent, 2 SIGKILL sent */
    int64_t started_ms;  /* spawn time */
    int64_t ready_ms;    /* READY time, 0 before */
    int64_t last_hb_ms;  /* last HELLO/READY/HEARTBEAT */
    int64_t deadline_ms; /* DRAINING: SIGKILL at this time */
    int64_t kill_at_ms;  /* kill_stage 1: SIGKILL at this time */
    void *io;            /* owned by the I/O layer (channel, metrics snapshot) */
};

struct slots_slot {
    struct slots_worker *cur; /* the current generation's worker, or NULL */
    unsigned failures;        /* consecutive failures, reset after stable_after READY */
    bool pending;             /* a spawn is scheduled at next_spawn_ms */
    int64_t next_spawn_ms;
    uint64_t restarts; /* respawns after a failure (never reset) */
};

struct slots_params {
    int workers;
    int worker_timeout_ms;
    int drain_timeout_ms;
    int kill_grace_ms;
    int backoff_min_ms;
    int backoff_max_ms;
    int stable_after_ms;
    int crash_limit;
    int crash_window_ms;
    int ready_timeout_ms;
};

enum slots_reload {
    SLOTS_RELOAD_NONE = 0,
    SLOTS_RELOAD_PENDING,
    SLOTS_RELOAD_OK,
    SLOTS_RELOAD_FAILED,
};

struct slots_ops {
    /* fork+exec a worker for w->slot / w->gen; sets w->pid and w->io. 0 or -1. */
    int (*spawn)(void *arg, struct slots_worker *w);
    void (*kill)(void *arg, struct slots_worker *w, int sig);
    /* DRAIN (with deadline_ms; w->handoff says whether it is a reload's) or STOP over the
     * control channel; best effort. */
    void (*send)(void *arg, struct slots_worker *w, enum slots_msg msg, int deadline_ms);
    /* w is gone: release w->io and retire its metrics. */
    void (*exited)(void *arg, struct slots_worker *w);
    uint32_t (*rand)(void *arg);
    void *arg;
};

struct slots {
    struct slots_params p; /* current generation */
    uint32_t gen;
    int nslots;
    struct slots_slot slot[SLOTS_MAX];
    struct slots_worker *workers; /* every live process, any generation */

    bool reloading;
    uint32_t new_gen;
    struct slots_params newp;
    struct slots_worker *newcur[SLOTS_MAX];
    int64_t reload_deadline_ms;
    enum slots_reload reload_result; /* OK/FAILED until slots_reload_take() */
    char reload_error[256];

    int shutdown; /* 0 running, 1 graceful, 2 fast */

    int64_t crash_times[SLOTS_CRASH_RING];
    unsigned ncrash;
    bool crash_loop;

    uint64_t spawns_total, crashes_total, timeouts_total, reloads_ok, reloads_failed;
    const struct slots_ops *ops;
};

const char *slots_state_name(enum slots_state st);

/* Initialises the table for generation gen (no process yet); ops is borrowed for life. */
void slots_init(struct slots *s, const struct slots_params *p, uint32_t gen,
                const struct slots_ops *ops);
/* Spawns every slot of the current generation now. */
void slots_start(struct slots *s, int64_t now);
/* Timers: respawns, watchdog, READY and drain deadlines, reload completion. Call often. */
void slots_tick(struct slots *s, int64_t now);

struct slots_worker *slots_find_pid(struct slots *s, pid_t pid);
void slots_on_hello(struct slots *s, struct slots_worker *w, int64_t now);
void slots_on_ready(struct slots *s, struct slots_worker *w, int64_t now);
void slots_on_heartbeat(struct slots *s, struct slots_worker *w, int64_t now);
/* The worker broke the channel protocol (or its config disagrees): it is killed. */
void slots_on_bad_worker(struct slots *s, struct slots_worker *w, const char *why, int64_t now);
/* A child was reaped (status as from waitpid). Unknown pids are logged and ignored. */
void slots_on_exit(struct slots *s, pid_t pid, int status, int64_t now);

/*
 * Starts a reload to a new generation with parameters p. Returns 0, or -1 with a reason in err
 * when a reload is already running or the supervisor is shutting down.
 */
int slots_reload(struct slots *s, const struct slots_params *p, int64_t now, char *err,
                 size_t errlen);
/* Returns and clears a finished reload's result (OK or FAILED; NONE/PENDING otherwise). */
enum slots_reload slots_reload_take(struct slots *s);

/* Graceful (DRAIN all, SIGKILL at drain_timeout) or fast (STOP + SIGTERM, SIGKILL at grace). */
void slots_shutdown(struct slots *s, bool fast, int64_t now);
/* Shutting down and no process left. */
bool slots_done(const struct slots *s);
/* Earliest scheduled respawn (ms, same clock as now), or -1 when none is pending. */
int64_t slots_next_spawn_ms(const struct slots *s);
/* Every slot of the current generation has a READY worker. */
bool slots_all_ready(const struct slots *s);
int slots_count_state(const struct slots *s, enum slots_state st);

#endif
