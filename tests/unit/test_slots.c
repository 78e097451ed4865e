/* test_slots.c - the supervisor's slot state machine under a fake clock and fake processes:
 * crash restart with backoff, backoff reset, crash loop, heartbeat watchdog, readiness-gated
 * reload, rollback on failure and timeout, refused overlapping reload, graceful shutdown. */
#include <check.h>

#include "unit.h"
#include <signal.h>
#include <string.h>
#include <sys/wait.h>

#include "log.h"
#include "slots.h"

#define MAXEV 512

static struct {
    int next_pid;
    int nspawn;
    struct slots_worker *spawned[MAXEV];
    int nkill;
    pid_t kill_pid[MAXEV];
    int kill_sig[MAXEV];
    int nsend;
    pid_t send_pid[MAXEV];
    int send_msg[MAXEV];
    bool send_handoff[MAXEV]; /* w->handoff when the message was sent */
    int nexited;
    bool fail_spawn;
} f;

static int f_spawn(void *arg, struct slots_worker *w)
{
    (void)arg;
    if (f.fail_spawn)
        return -1;
    w->pid = ++f.next_pid;
    f.spawned[f.nspawn++ % MAXEV] = w;
    return 0;
}

static void f_kill(void *arg, struct slots_worker *w, int sig)
{
    (void)arg;
    f.kill_pid[f.nkill % MAXEV] = w->pid;
    f.kill_sig[f.nkill++ % MAXEV] = sig;
}

static void f_send(void *arg, struct slots_worker *w, enum slots_msg msg, int deadline)
{
    (void)arg;
    (void)deadline;
    f.send_pid[f.nsend % MAXEV] = w->pid;
    f.send_handoff[f.nsend % MAXEV] = w->handoff;
    f.send_msg[f.nsend++ % MAXEV] = msg;
}

static void f_exited(void *arg, struct slots_worker *w)
{
    (void)arg;
    (void)w;
    f.nexited++;
}

static uint32_t f_rand(void *arg)
{
    (void)arg;
    return 0x12345;
}

static const struct slots_ops ops = {f_spawn, f_kill, f_send, f_exited, f_rand, NULL};
static struct slots S;

static struct slots_params params(int n)
{
    struct slots_params p = {.workers = n,
                             .worker_timeout_ms = 2000,
                             .drain_timeout_ms = 5000,
                             .kill_grace_ms = 1000,
                             .backoff_min_ms = 100,
                             .backoff_max_ms = 30000,
                             .stable_after_ms = 60000,
                             .crash_limit = 5,
                             .crash_window_ms = 60000,
                             .ready_timeout_ms = 10000};
    return p;
}

static void setup(void)
{
    struct slots_params p = params(4);
    memset(&f, 0, sizeof(f));
    f.next_pid = 1000;
    log_set_level(LOG_LVL_CRIT);
    slots_init(&S, &p, 1, &ops);
}

static void make_ready(int64_t now)
{
    for (struct slots_worker *w = S.workers; w; w = w->next)
        if (w->state == SLOTS_SPAWNING) {
            slots_on_hello(&S, w, now);
            slots_on_ready(&S, w, now);
        }
}

static void heartbeat_all(int64_t now)
{
    for (struct slots_worker *w = S.workers; w; w = w->next)
        slots_on_heartbeat(&S, w, now);
}

static bool killed_with(pid_t pid, int sig)
{
    for (int i = 0; i < f.nkill; i++)
        if (f.kill_pid[i] == pid && f.kill_sig[i] == sig)
            return true;
    return false;
}

static bool sent(pid_t pid, int msg)
{
    for (int i = 0; i < f.nsend; i++)
        if (f.send_pid[i] == pid && f.send_msg[i] == msg)
            return true;
    return false;
}

/* A DRAIN was sent to pid, asking for a connection handoff (handoff true) or not. */
static bool drained_with_handoff(pid_t pid, bool handoff)
{
    for (int i = 0; i < f.nsend; i++)
        if (f.send_pid[i] == pid && f.send_msg[i] == SLOTS_MSG_DRAIN &&
            f.send_handoff[i] == handoff)
            return true;
    return false;
}

static int sigkilled(void)
{
    return W_EXITCODE(0, SIGKILL);
}

START_TEST(start_and_ready)
{
    slots_start(&S, 0);
    ck_assert_int_eq(f.nspawn, 4);
    ck_assert(!slots_all_ready(&S));
    make_ready(50);
    ck_assert(slots_all_ready(&S));
    ck_assert_int_eq(slots_count_state(&S, SLOTS_READY), 4);
}
END_TEST

START_TEST(crash_restart_with_backoff)
{
    pid_t victim;
    int64_t t = 1000;

    slots_start(&S, 0);
    make_ready(10);
    victim = S.slot[2].cur->pid;
    slots_on_exit(&S, victim, sigkilled(), t);
    ck_assert_ptr_null(S.slot[2].cur);
    ck_assert_uint_eq(S.slot[2].failures, 1);
    slots_tick(&S, t + 79); /* never before 80% of backoff_min */
    ck_assert_int_eq(f.nspawn, 4);
    slots_tick(&S, t + 121);
    ck_assert_int_eq(f.nspawn, 5);
    ck_assert_ptr_nonnull(S.slot[2].cur);
    ck_assert_int_ne(S.slot[2].cur->pid, victim);
    ck_assert_uint_eq(S.slot[2].restarts, 1);
    /* other slots untouched */
    ck_assert_int_eq(slots_count_state(&S, SLOTS_READY), 3);
    /* a second crash before READY doubles the delay */
    t += 200;
    slots_on_exit(&S, S.slot[2].cur->pid, W_EXITCODE(1, 0), t);
    slots_tick(&S, t + 159);
    ck_assert_int_eq(f.nspawn, 5);
    slots_tick(&S, t + 241);
    ck_assert_int_eq(f.nspawn, 6);
    /* READY and stable for stable_after: backoff resets */
    make_ready(t + 300);
    slots_tick(&S, t + 300 + 59999);
    ck_assert_uint_eq(S.slot[2].failures, 2);
    slots_tick(&S, t + 300 + 60000);
    ck_assert_uint_eq(S.slot[2].failures, 0);
    ck_assert(!S.crash_loop);
}
END_TEST

START_TEST(crash_loop_reported_never_busy)
{
    int64_t t = 0;
    int spawns_before;

    slots_start(&S, 0);
    for (int i = 0; i < 8; i++) {
        pid_t pid = S.slot[0].cur->pid;
        spawns_before = f.nspawn;
        slots_on_exit(&S, pid, W_EXITCODE(2, 0), t);
        /* the respawn never happens in the same instant */
        slots_tick(&S, t);
        ck_assert_int_eq(f.nspawn, spawns_before);
        t += 40000 > (100 << i) * 2 ? (100 << i) * 2 : 40000;
        slots_tick(&S, t);
        ck_assert_int_eq(f.nspawn, spawns_before + 1);
    }
    ck_assert(S.crash_loop);
    ck_assert_uint_eq(S.crashes_total, 8);
    /* a window later without crashes: the flag clears */
    make_ready(t);
    slots_tick(&S, t + 60001);
    ck_assert(!S.crash_loop);
}
END_TEST

START_TEST(watchdog_abrt_then_kill)
{
    struct slots_worker *w;
    pid_t pid;

    slots_start(&S, 0);
    make_ready(0);
    w = S.slot[1].cur;
    pid = w->pid;
    for (int64_t t = 100; t <= 2000; t += 100) {
        heartbeat_all(t);
        w->last_hb_ms = 0; /* slot 1 is stuck */
        slots_tick(&S, t);
    }
    ck_assert(!killed_with(pid, SIGABRT));
    heartbeat_all(2100);
    w->last_hb_ms = 0;
    slots_tick(&S, 2100);
    ck_assert(killed_with(pid, SIGABRT));
    ck_assert(killed_with(pid, SIGCONT));
    ck_assert_uint_eq(S.timeouts_total, 1);
    ck_assert(!killed_with(pid, SIGKILL));
    slots_tick(&S, 2100 + 999);
    ck_assert(!killed_with(pid, SIGKILL));
    slots_tick(&S, 2100 + 1000);
    ck_assert(killed_with(pid, SIGKILL));
    /* only slot 1 was touched */
    ck_assert_int_eq(f.nkill, 3);
    slots_on_exit(&S, pid, sigkilled(), 3200);
    slots_tick(&S, 3400);
    ck_assert_ptr_nonnull(S.slot[1].cur);
    ck_assert_int_ne(S.slot[1].cur->pid, pid);
}
END_TEST

START_TEST(reload_is_readiness_gated)
{
    struct slots_params p = params(4);
    pid_t old[4];
    char err[128];

    slots_start(&S, 0);
    make_ready(0);
    for (int i = 0; i < 4; i++)
        old[i] = S.slot[i].cur->pid;
    ck_assert_int_eq(slots_reload(&S, &p, 1000, err, sizeof(err)), 0);
    ck_assert_int_eq(f.nspawn, 8);
    /* overlapping reload refused */
    ck_assert_int_eq(slots_reload(&S, &p, 1001, err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "in progress"));
    /* three of four new workers READY: nobody drains yet */
    for (int i = 0; i < 3; i++) {
        slots_on_hello(&S, S.newcur[i], 1100);
        slots_on_ready(&S, S.newcur[i], 1100);
    }
    slots_tick(&S, 1200);
    ck_assert_int_eq(f.nsend, 0);
    ck_assert_uint_eq(S.gen, 1);
    slots_on_hello(&S, S.newcur[3], 1300);
    slots_on_ready(&S, S.newcur[3], 1300);
    ck_assert_uint_eq(S.gen, 2);
    ck_assert_int_eq(slots_reload_take(&S), SLOTS_RELOAD_OK);
    ck_assert_int_eq(slots_reload_take(&S), SLOTS_RELOAD_NONE);
    for (int i = 0; i < 4; i++) {
        ck_assert(sent(old[i], SLOTS_MSG_DRAIN));
        /* a reload's drain hands idle connections to generation 2 */
        ck_assert(drained_with_handoff(old[i], true));
        ck_assert_int_ne(S.slot[i].cur->pid, old[i]);
        ck_assert_uint_eq(S.slot[i].cur->gen, 2);
    }
    ck_assert_int_eq(slots_count_state(&S, SLOTS_DRAINING), 4);
    /* old workers exit cleanly: no respawn, no crash */
    for (int i = 0; i < 4; i++)
        slots_on_exit(&S, old[i], W_EXITCODE(0, 0), 1500);
    slots_tick(&S, 5000);
    ck_assert_int_eq(f.nspawn, 8);
    ck_assert_uint_eq(S.crashes_total, 0);
    /* a late drain deadline kills a draining worker that hangs */
}
END_TEST

START_TEST(reload_rollback_on_death)
{
    struct slots_params p = params(4);
    char err[128];
    pid_t dead;

    slots_start(&S, 0);
    make_ready(0);
    ck_assert_int_eq(slots_reload(&S, &p, 1000, err, sizeof(err)), 0);
    slots_on_hello(&S, S.newcur[0], 1100);
    slots_on_ready(&S, S.newcur[0], 1100);
    dead = S.newcur[2]->pid;
    slots_on_exit(&S, dead, W_EXITCODE(1, 0), 1200);
    ck_assert_int_eq(slots_reload_take(&S), SLOTS_RELOAD_FAILED);
    ck_assert_ptr_nonnull(strstr(S.reload_error, "exited with status 1"));
    ck_assert_uint_eq(S.gen, 1);
    ck_assert_uint_eq(S.reloads_failed, 1);
    /* every surviving new worker got STOP; the old generation got nothing */
    for (struct slots_worker *w = S.workers; w; w = w->next) {
        if (w->gen == 2)
            ck_assert(sent(w->pid, SLOTS_MSG_STOP));
        else
            ck_assert_int_eq(w->state, SLOTS_READY);
    }
    for (int i = 0; i < 4; i++)
        ck_assert(!sent(S.slot[i].cur->pid, SLOTS_MSG_DRAIN));
    /* g+1 boot failures do not feed g's backoff */
    for (int i = 0; i < 4; i++)
        ck_assert_uint_eq(S.slot[i].failures, 0);
    /* the stopped ones are SIGKILLed after kill_grace if they hang */
    slots_tick(&S, 1200 + 1001);
    for (struct slots_worker *w = S.workers; w; w = w->next)
        if (w->gen == 2)
            ck_assert(killed_with(w->pid, SIGKILL));
    /* a new reload is accepted afterwards */
    ck_assert_int_eq(slots_reload(&S, &p, 3000, err, sizeof(err)), 0);
}
END_TEST

START_TEST(reload_rollback_on_timeout)
{
    struct slots_params p = params(2);
    char err[128];

    slots_start(&S, 0);
    make_ready(0);
    ck_assert_int_eq(slots_reload(&S, &p, 1000, err, sizeof(err)), 0);
    heartbeat_all(5000);
    slots_tick(&S, 5000);
    ck_assert_int_eq(slots_reload_take(&S), SLOTS_RELOAD_PENDING);
    heartbeat_all(10999);
    slots_tick(&S, 11000);
    ck_assert_int_eq(slots_reload_take(&S), SLOTS_RELOAD_FAILED);
    ck_assert_ptr_nonnull(strstr(S.reload_error, "not READY"));
    ck_assert_int_eq(S.nslots, 4);
    ck_assert_uint_eq(S.gen, 1);
}
END_TEST

START_TEST(reload_uses_new_generation_timeouts)
{
    struct slots_params p = params(2);
    char err[128];

    p.ready_timeout_ms = 20000; /* the current generation has 10000 */
    slots_start(&S, 0);
    make_ready(0);
    ck_assert_int_eq(slots_reload(&S, &p, 1000, err, sizeof(err)), 0);
    heartbeat_all(15000);
    slots_tick(&S, 15000);
    ck_assert_int_eq(f.nkill, 0);
    ck_assert_int_eq(slots_reload_take(&S), SLOTS_RELOAD_PENDING);
    make_ready(16000);
    ck_assert_int_eq(slots_reload_take(&S), SLOTS_RELOAD_OK);
    ck_assert_int_eq(S.nslots, 2);
    ck_assert_int_eq(S.p.ready_timeout_ms, 20000);
}
END_TEST

START_TEST(reload_shrinks_and_grows)
{
    struct slots_params two = params(2), six = params(6);
    char err[128];
    pid_t old[4];

    slots_start(&S, 0);
    make_ready(0);
    for (int i = 0; i < 4; i++)
        old[i] = S.slot[i].cur->pid;
    ck_assert_int_eq(slots_reload(&S, &two, 100, err, sizeof(err)), 0);
    ck_assert_int_eq(f.nspawn, 6);
    make_ready(200);
    ck_assert_int_eq(slots_reload_take(&S), SLOTS_RELOAD_OK);
    ck_assert_int_eq(S.nslots, 2);
    for (int i = 0; i < 4; i++)
        ck_assert(sent(old[i], SLOTS_MSG_DRAIN));
    for (int i = 0; i < 4; i++)
        slots_on_exit(&S, old[i], W_EXITCODE(0, 0), 300);
    slots_tick(&S, 1000);
    ck_assert_int_eq(f.nspawn, 6); /* slots 2 and 3 are gone, not respawned */
    ck_assert(slots_all_ready(&S));
    ck_assert_int_eq(slots_reload(&S, &six, 2000, err, sizeof(err)), 0);
    ck_assert_int_eq(f.nspawn, 12);
    make_ready(2100);
    ck_assert_int_eq(slots_reload_take(&S), SLOTS_RELOAD_OK);
    ck_assert_int_eq(S.nslots, 6);
    ck_assert_int_eq(slots_count_state(&S, SLOTS_READY), 6);
}
END_TEST

START_TEST(bad_worker_is_killed_and_respawned)
{
    pid_t pid;
    slots_start(&S, 0);
    make_ready(0);
    pid = S.slot[3].cur->pid;
    slots_on_bad_worker(&S, S.slot[3].cur, "bad control message", 10);
    ck_assert(killed_with(pid, SIGKILL));
    slots_on_exit(&S, pid, sigkilled(), 20);
    slots_tick(&S, 200);
    ck_assert_int_ne(S.slot[3].cur->pid, pid);
    ck_assert_uint_eq(S.crashes_total, 1);
}
END_TEST

START_TEST(reload_storm_caps_draining_generations)
{
    struct slots_params p = params(2);
    char err[128];
    pid_t gen1[2];

    slots_start(&S, 0);
    make_ready(0);
    gen1[0] = S.slot[0].cur->pid;
    gen1[1] = S.slot[1].cur->pid;
    /* three reloads whose old workers never finish draining */
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(slots_reload(&S, &p, 1000 * (i + 1), err, sizeof(err)), 0);
        make_ready(1000 * (i + 1) + 100);
        ck_assert_int_eq(slots_reload_take(&S), SLOTS_RELOAD_OK);
    }
    ck_assert_uint_eq(S.gen, 4);
    /* generations 2 and 3 still drain; generation 1 was stopped */
    ck_assert(sent(gen1[0], SLOTS_MSG_STOP));
    ck_assert(sent(gen1[1], SLOTS_MSG_STOP));
    ck_assert(killed_with(gen1[0], SIGTERM));
    for (struct slots_worker *w = S.workers; w; w = w->next)
        if (w->gen == 2 || w->gen == 3)
            ck_assert(!w->stopped);
}
END_TEST

START_TEST(graceful_shutdown)
{
    pid_t pids[4];
    slots_start(&S, 0);
    make_ready(0);
    for (int i = 0; i < 4; i++)
        pids[i] = S.slot[i].cur->pid;
    slots_shutdown(&S, false, 100);
    for (int i = 0; i < 4; i++) {
        ck_assert(sent(pids[i], SLOTS_MSG_DRAIN));
        /* a shutdown's drain closes idle connections: nobody would adopt them */
        ck_assert(drained_with_handoff(pids[i], false));
    }
    ck_assert(!slots_done(&S));
    slots_on_exit(&S, pids[0], W_EXITCODE(0, 0), 200);
    slots_on_exit(&S, pids[1], W_EXITCODE(0, 0), 200);
    slots_tick(&S, 300);
    ck_assert_int_eq(f.nspawn, 4); /* no respawn while stopping */
    slots_tick(&S, 100 + 4999);
    ck_assert(!killed_with(pids[2], SIGKILL));
    slots_tick(&S, 100 + 5000); /* drain_timeout: the stragglers are killed */
    ck_assert(killed_with(pids[2], SIGKILL));
    ck_assert(killed_with(pids[3], SIGKILL));
    slots_on_exit(&S, pids[2], sigkilled(), 5200);
    slots_on_exit(&S, pids[3], sigkilled(), 5200);
    ck_assert(slots_done(&S));
    ck_assert_uint_eq(S.crashes_total, 0);
    ck_assert_int_eq(f.nexited, 4);
}
END_TEST

START_TEST(spawn_failure_backs_off)
{
    f.fail_spawn = true;
    slots_start(&S, 0);
    ck_assert_int_eq(f.nspawn, 0);
    ck_assert(S.slot[0].pending);
    ck_assert_uint_eq(S.slot[0].failures, 1);
    f.fail_spawn = false;
    slots_tick(&S, 200);
    ck_assert_int_eq(f.nspawn, 4);
}
END_TEST

START_TEST(unknown_pid_ignored)
{
    slots_start(&S, 0);
    slots_on_exit(&S, 99999, 0, 10);
    ck_assert_int_eq(f.nexited, 0);
    ck_assert_uint_eq(S.crashes_total, 0);
}
END_TEST

Suite *unit_suite(void)
{
    Suite *s = suite_create("slots");
    TCase *tc = tcase_create("fsm");

    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, start_and_ready);
    tcase_add_test(tc, crash_restart_with_backoff);
    tcase_add_test(tc, crash_loop_reported_never_busy);
    tcase_add_test(tc, watchdog_abrt_then_kill);
    tcase_add_test(tc, reload_is_readiness_gated);
    tcase_add_test(tc, reload_rollback_on_death);
    tcase_add_test(tc, reload_rollback_on_timeout);
    tcase_add_test(tc, reload_uses_new_generation_timeouts);
    tcase_add_test(tc, reload_shrinks_and_grows);
    tcase_add_test(tc, bad_worker_is_killed_and_respawned);
    tcase_add_test(tc, reload_storm_caps_draining_generations);
    tcase_add_test(tc, graceful_shutdown);
    tcase_add_test(tc, spawn_failure_backs_off);
    tcase_add_test(tc, unknown_pid_ignored);
    suite_add_tcase(s, tc);
    return s;
}
