/*
 * slots.c - the supervisor's slot table: which worker serves which slot of which generation,
 * and the policy that keeps N of them healthy. No I/O: see slots.h for the seam.
 *
 * Invariants:
 * - Every worker state change goes through set_state(), which logs from -> to.
 * - slot[i].cur is a live worker of the current generation s->gen, or NULL with a spawn
 *   pending (unless shutting down). Workers of other generations are DRAINING, or are the
 *   SPAWNING/READY new generation of a reload in progress (newcur[]).
 * - A reload DRAINs generation g only once every slot of g+1 is READY; if any g+1 worker dies
 *   or misses ready_timeout, all of g+1 is stopped and g keeps serving untouched. Boot failures
 *   of g+1 never feed g's backoff. One reload at a time.
 * - A respawn is always delayed by backoff (>= 80% of backoff_min), so a crash loop can never
 *   busy-loop; it is reported (crash_loop) once crash_limit crashes fall within crash_window.
 * - A stuck worker (no heartbeat for worker_timeout) gets SIGABRT (+SIGCONT, so a stopped one
 *   dies too), then SIGKILL after kill_grace; a draining one gets SIGKILL at its deadline.
 * - At most SLOTS_MAX_DRAINING_GENS older generations drain at once.
 */
#include "slots.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "backoff.h"
#include "log.h"

static const char *const state_names[] = {"SPAWNING", "READY", "DRAINING", "EXITED"};

const char *slots_state_name(enum slots_state st)
{
    return (unsigned)st < 4 ? state_names[st] : "?";
}

static void set_state(struct slots_worker *w, enum slots_state to, const char *why)
{
    log_info("worker slot %d gen %u pid %d: %s -> %s%s%s", w->slot, w->gen, (int)w->pid,
             slots_state_name(w->state), slots_state_name(to), why ? ": " : "", why ? why : "");
    w->state = to;
}

void slots_init(struct slots *s, const struct slots_params *p, uint32_t gen,
                const struct slots_ops *ops)
{
    memset(s, 0, sizeof(*s));
    s->p = *p;
    s->gen = gen;
    s->nslots = p->workers > SLOTS_MAX ? SLOTS_MAX : p->workers;
    s->ops = ops;
}

static struct slots_worker *spawn(struct slots *s, int slot, uint32_t gen, int64_t now)
{
    struct slots_worker *w = calloc(1, sizeof(*w));

    if (!w) {
        log_error("spawn slot %d: out of memory", slot);
        return NULL;
    }
    w->slot = slot;
    w->gen = gen;
    w->state = SLOTS_SPAWNING;
    w->started_ms = now;
    w->last_hb_ms = now;
    if (s->ops->spawn(s->ops->arg, w) < 0) {
        free(w);
        return NULL;
    }
    s->spawns_total++;
    w->next = s->workers;
    s->workers = w;
    log_info("worker slot %d gen %u pid %d: spawned (SPAWNING)", slot, gen, (int)w->pid);
    return w;
}

static void kill_now(struct slots *s, struct slots_worker *w)
{
    if (w->kill_stage < 2) {
        s->ops->kill(s->ops->arg, w, SIGKILL);
        w->kill_stage = 2;
    }
}

/* handoff: a reload's drain (the new generation is READY to adopt idle connections). */
static void begin_drain(struct slots *s, struct slots_worker *w, int64_t deadline_ms,
                        const char *why, bool handoff, int64_t now)
{
    if (w->state == SLOTS_DRAINING || w->state == SLOTS_EXITED) {
        if (deadline_ms < w->deadline_ms)
            w->deadline_ms = deadline_ms;
        return;
    }
    set_state(w, SLOTS_DRAINING, why);
    w->deadline_ms = deadline_ms;
    w->handoff = handoff;
    s->ops->send(s->ops->arg, w, SLOTS_MSG_DRAIN, (int)(deadline_ms - now));
}

static void stop_worker(struct slots *s, struct slots_worker *w, const char *why, int64_t now)
{
    if (w->state != SLOTS_DRAINING)
        set_state(w, SLOTS_DRAINING, why);
    if (!w->stopped) {
        w->stopped = true;
        s->ops->send(s->ops->arg, w, SLOTS_MSG_STOP, 0);
        s->ops->kill(s->ops->arg, w, SIGTERM);
        if (w->kill_stage < 1)
            w->kill_stage = 1;
        w->kill_at_ms = now + s->p.kill_grace_ms;
        w->deadline_ms = w->kill_at_ms;
    }
}

static void schedule_respawn(struct slots *s, int i, int64_t now)
{
    struct slots_slot *sl = &s->slot[i];
    uint32_t d;

    sl->failures++;
    d = backoff_delay_ms(sl->failures, (uint32_t)s->p.backoff_min_ms, (uint32_t)s->p.backoff_max_ms,
                         s->ops->rand(s->ops->arg));
    sl->pending = true;
    sl->next_spawn_ms = now + d;
    log_notice("slot %d: respawn in %u ms (consecutive failure %u)", i, d, sl->failures);
}

void slots_start(struct slots *s, int64_t now)
{
    for (int i = 0; i < s->nslots; i++) {
        s->slot[i].pending = true;
        s->slot[i].next_spawn_ms = now;
    }
    slots_tick(s, now);
}

static void record_crash(struct slots *s, int64_t now)
{
    s->crashes_total++;
    s->crash_times[s->ncrash++ % SLOTS_CRASH_RING] = now;
}

static void update_crash_loop(struct slots *s, int64_t now)
{
    int n = 0;
    unsigned have = s->ncrash < SLOTS_CRASH_RING ? s->ncrash : SLOTS_CRASH_RING;
    bool loop;

    for (unsigned i = 0; i < have; i++)
        if (now - s->crash_times[i] < s->p.crash_window_ms)
            n++;
    loop = n >= s->p.crash_limit;
    if (loop && !s->crash_loop)
        log_crit("crash loop: %d worker failures within %d s (respawns continue with backoff)", n,
                 s->p.crash_window_ms / 1000);
    else if (!loop && s->crash_loop)
        log_notice("crash loop over: fewer than %d failures within %d s", s->p.crash_limit,
                   s->p.crash_window_ms / 1000);
    s->crash_loop = loop;
}

static void reload_fail(struct slots *s, const char *why, int64_t now)
{
    log_error("reload to generation %u failed: %s; generation %u keeps serving", s->new_gen, why,
              s->gen);
    snprintf(s->reload_error, sizeof(s->reload_error), "%s", why);
    for (struct slots_worker *w = s->workers; w; w = w->next)
        if (w->gen == s->new_gen && w->state != SLOTS_EXITED)
            stop_worker(s, w, "rollback", now);
    memset(s->newcur, 0, sizeof(s->newcur));
    s->reloading = false;
    s->reloads_failed++;
    s->reload_result = SLOTS_RELOAD_FAILED;
}

/* Stops the oldest draining generations beyond SLOTS_MAX_DRAINING_GENS. */
static void cap_draining(struct slots *s, int64_t now)
{
    for (;;) {
        uint32_t gens[SLOTS_MAX_DRAINING_GENS + 1], oldest = UINT32_MAX;
        int n = 0;
        for (struct slots_worker *w = s->workers; w; w = w->next) {
            bool seen = false;
            if (w->state != SLOTS_DRAINING || w->stopped || w->gen == s->gen)
                continue;
            for (int i = 0; i < n; i++)
                seen |= gens[i] == w->gen;
            if (!seen && n <= SLOTS_MAX_DRAINING_GENS)
                gens[n++] = w->gen;
            if (w->gen < oldest)
                oldest = w->gen;
        }
        if (n <= SLOTS_MAX_DRAINING_GENS)
            return;
        log_warn("%d generations draining at once: stopping generation %u", n, oldest);
        for (struct slots_worker *w = s->workers; w; w = w->next)
            if (w->gen == oldest && w->state == SLOTS_DRAINING && !w->stopped)
                stop_worker(s, w, "too many draining generations", now);
    }
}

static void reload_commit(struct slots *s, int64_t now)
{
    int i, n = s->newp.workers > SLOTS_MAX ? SLOTS_MAX : s->newp.workers;

    /* Generation g+1 is entirely READY: only now may generation g stop accepting. */
    for (struct slots_worker *w = s->workers; w; w = w->next)
        if (w->gen != s->new_gen)
            begin_drain(s, w, now + s->newp.drain_timeout_ms + s->newp.kill_grace_ms, "reload",
                        true, now);
    for (i = 0; i < SLOTS_MAX; i++) {
        uint64_t restarts = s->slot[i].restarts;
        memset(&s->slot[i], 0, sizeof(s->slot[i]));
        s->slot[i].restarts = restarts;
        if (i < n)
            s->slot[i].cur = s->newcur[i];
    }
    memset(s->newcur, 0, sizeof(s->newcur));
    log_notice("reload: generation %u READY with %d workers, generation %u draining", s->new_gen, n,
               s->gen);
    s->p = s->newp;
    s->nslots = n;
    s->gen = s->new_gen;
    /* a fully READY new generation ends the previous one's crash history */
    s->ncrash = 0;
    memset(s->crash_times, 0, sizeof(s->crash_times));
    s->reloading = false;
    s->reloads_ok++;
    s->reload_result = SLOTS_RELOAD_OK;
    cap_draining(s, now);
}

void slots_tick(struct slots *s, int64_t now)
{
    struct slots_worker *w;

    for (w = s->workers; w; w = w->next) {
        /* a reload's new workers live by the new generation's timeouts */
        const struct slots_params *wp = s->reloading && w->gen == s->new_gen ? &s->newp : &s->p;

        if (w->state == SLOTS_EXITED)
            continue;
        if (w->kill_stage == 1 && now >= w->kill_at_ms) {
            log_warn("worker slot %d gen %u pid %d: still alive %d ms after signal, SIGKILL",
                     w->slot, w->gen, (int)w->pid, wp->kill_grace_ms);
            kill_now(s, w);
            continue;
        }
        switch (w->state) {
        case SLOTS_SPAWNING:
            if (w->kill_stage == 0 && now - w->started_ms > wp->ready_timeout_ms) {
                log_error("worker slot %d gen %u pid %d: not READY within %d s, killing", w->slot,
                          w->gen, (int)w->pid, wp->ready_timeout_ms / 1000);
                kill_now(s, w);
                break;
            }
            /* a worker that said HELLO must heartbeat while it starts */
            __attribute__((fallthrough));
        case SLOTS_READY:
            if (w->kill_stage == 0 && now - w->last_hb_ms > wp->worker_timeout_ms &&
                (w->hello || w->state == SLOTS_READY)) {
                log_error("worker slot %d gen %u pid %d: no heartbeat for %lld ms, SIGABRT",
                          w->slot, w->gen, (int)w->pid, (long long)(now - w->last_hb_ms));
                s->timeouts_total++;
                w->timed_out = true;
                s->ops->kill(s->ops->arg, w, SIGABRT);
                s->ops->kill(s->ops->arg, w, SIGCONT);
                w->kill_stage = 1;
                w->kill_at_ms = now + wp->kill_grace_ms;
            }
            break;
        case SLOTS_DRAINING:
            if (w->kill_stage < 2 && now >= w->deadline_ms) {
                log_warn("worker slot %d gen %u pid %d: drain deadline passed, SIGKILL", w->slot,
                         w->gen, (int)w->pid);
                kill_now(s, w);
            }
            break;
        case SLOTS_EXITED:
            break;
        }
    }

    if (s->reloading) {
        bool all = true;
        int n = s->newp.workers > SLOTS_MAX ? SLOTS_MAX : s->newp.workers;
        for (int i = 0; i < n; i++)
            if (!s->newcur[i] || s->newcur[i]->state != SLOTS_READY)
                all = false;
        if (all)
            reload_commit(s, now);
        else if (now >= s->reload_deadline_ms) {
            char why[128];
            snprintf(why, sizeof(why), "new workers not READY within %d s",
                     s->newp.ready_timeout_ms / 1000);
            reload_fail(s, why, now);
        }
    }

    for (int i = 0; i < s->nslots && !s->shutdown; i++) {
        struct slots_slot *sl = &s->slot[i];
        if (!sl->cur && sl->pending && now >= sl->next_spawn_ms) {
            sl->pending = false;
            if (sl->failures)
                sl->restarts++;
            sl->cur = spawn(s, i, s->gen, now);
            if (!sl->cur) {
                record_crash(s, now);
                schedule_respawn(s, i, now);
            }
        }
        if (sl->cur && sl->cur->state == SLOTS_READY && sl->failures &&
            now - sl->cur->ready_ms >= s->p.stable_after_ms) {
            log_info("slot %d: stable for %d s, backoff reset", i, s->p.stable_after_ms / 1000);
            sl->failures = 0;
        }
    }
    update_crash_loop(s, now);
}

struct slots_worker *slots_find_pid(struct slots *s, pid_t pid)
{
    for (struct slots_worker *w = s->workers; w; w = w->next)
        if (w->pid == pid)
            return w;
    return NULL;
}

void slots_on_hello(struct slots *s, struct slots_worker *w, int64_t now)
{
    (void)s;
    w->hello = true;
    w->last_hb_ms = now;
}

void slots_on_ready(struct slots *s, struct slots_worker *w, int64_t now)
{
    w->last_hb_ms = now;
    if (w->state != SLOTS_SPAWNING)
        return;
    w->ready_ms = now;
    set_state(w, SLOTS_READY, NULL);
    slots_tick(s, now);
}

void slots_on_heartbeat(struct slots *s, struct slots_worker *w, int64_t now)
{
    (void)s;
    w->last_hb_ms = now;
}

void slots_on_bad_worker(struct slots *s, struct slots_worker *w, const char *why, int64_t now)
{
    (void)now;
    log_error("worker slot %d gen %u pid %d: %s; killing it", w->slot, w->gen, (int)w->pid, why);
    kill_now(s, w);
}

static void describe(int status, const struct slots_worker *w, char *buf, size_t len)
{
    if (WIFEXITED(status))
        snprintf(buf, len, "exited with status %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(buf, len, "killed by signal %d (%s)%s%s", WTERMSIG(status),
                 strsignal(WTERMSIG(status)), WCOREDUMP(status) ? ", core dumped" : "",
                 WTERMSIG(status) == SIGKILL && w->kill_stage < 2 ? ", possibly by the OOM killer"
                                                                  : "");
    else
        snprintf(buf, len, "ended with status 0x%x", status);
}

void slots_on_exit(struct slots *s, pid_t pid, int status, int64_t now)
{
    struct slots_worker *w = slots_find_pid(s, pid), **pp;
    enum slots_state was;
    char desc[160];

    if (!w) {
        log_warn("reaped unknown child pid %d (status 0x%x)", (int)pid, status);
        return;
    }
    was = w->state;
    describe(status, w, desc, sizeof(desc));
    set_state(w, SLOTS_EXITED, desc);

    if (s->reloading && w->gen == s->new_gen && w->slot < SLOTS_MAX && s->newcur[w->slot] == w) {
        char why[256];
        snprintf(why, sizeof(why), "new worker slot %d pid %d %s%s", w->slot, (int)pid, desc,
                 was == SLOTS_SPAWNING ? " before READY" : "");
        s->newcur[w->slot] = NULL;
        reload_fail(s, why, now);
    } else if (w->gen == s->gen && w->slot < s->nslots && s->slot[w->slot].cur == w) {
        s->slot[w->slot].cur = NULL;
        if (!s->shutdown) {
            bool clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
            log_error("worker slot %d gen %u pid %d %s %s", w->slot, w->gen, (int)pid,
                      was == SLOTS_SPAWNING ? "failed to start:" : (clean ? "quit:" : "crashed:"),
                      desc);
            record_crash(s, now);
            schedule_respawn(s, w->slot, now);
        }
    }

    s->ops->exited(s->ops->arg, w);
    for (pp = &s->workers; *pp; pp = &(*pp)->next)
        if (*pp == w) {
            *pp = w->next;
            break;
        }
    free(w);
    update_crash_loop(s, now);
}

int slots_reload(struct slots *s, const struct slots_params *p, int64_t now, char *err,
                 size_t errlen)
{
    int n = p->workers > SLOTS_MAX ? SLOTS_MAX : p->workers;

    if (s->shutdown) {
        snprintf(err, errlen, "shutting down");
        return -1;
    }
    if (s->reloading) {
        snprintf(err, errlen, "a reload is already in progress (generation %u)", s->new_gen);
        return -1;
    }
    s->reloading = true;
    s->new_gen = s->gen + 1;
    s->newp = *p;
    s->reload_deadline_ms = now + p->ready_timeout_ms;
    s->reload_result = SLOTS_RELOAD_PENDING;
    s->reload_error[0] = '\0';
    memset(s->newcur, 0, sizeof(s->newcur));
    log_notice("reload: spawning generation %u (%d workers)", s->new_gen, n);
    for (int i = 0; i < n; i++) {
        s->newcur[i] = spawn(s, i, s->new_gen, now);
        if (!s->newcur[i]) {
            char why[64];
            snprintf(why, sizeof(why), "cannot spawn slot %d", i);
            reload_fail(s, why, now);
            return 0;
        }
    }
    return 0;
}

enum slots_reload slots_reload_take(struct slots *s)
{
    enum slots_reload r = s->reload_result;
    if (r == SLOTS_RELOAD_OK || r == SLOTS_RELOAD_FAILED)
        s->reload_result = SLOTS_RELOAD_NONE;
    return r;
}

void slots_shutdown(struct slots *s, bool fast, int64_t now)
{
    int level = fast ? 2 : 1;

    if (s->shutdown >= level)
        return;
    s->shutdown = level;
    if (s->reloading)
        reload_fail(s, "shutting down", now);
    for (int i = 0; i < SLOTS_MAX; i++)
        s->slot[i].pending = false;
    for (struct slots_worker *w = s->workers; w; w = w->next) {
        if (w->state == SLOTS_EXITED)
            continue;
        if (fast)
            stop_worker(s, w, "fast shutdown", now);
        else
            begin_drain(s, w, now + s->p.drain_timeout_ms, "shutdown", false, now);
    }
}

bool slots_done(const struct slots *s)
{
    return s->shutdown && s->workers == NULL;
}

int64_t slots_next_spawn_ms(const struct slots *s)
{
    int64_t t = -1;
    if (s->shutdown)
        return -1;
    for (int i = 0; i < s->nslots; i++)
        if (!s->slot[i].cur && s->slot[i].pending && (t < 0 || s->slot[i].next_spawn_ms < t))
            t = s->slot[i].next_spawn_ms;
    return t;
}

bool slots_all_ready(const struct slots *s)
{
    if (s->nslots == 0)
        return false;
    for (int i = 0; i < s->nslots; i++)
        if (!s->slot[i].cur || s->slot[i].cur->state != SLOTS_READY)
            return false;
    return true;
}

int slots_count_state(const struct slots *s, enum slots_state st)
{
    int n = 0;
    for (const struct slots_worker *w = s->workers; w; w = w->next)
        if (w->state == st)
            n++;
    return n;
}
