/*
 * mconn.h - one asynchronous PostgreSQL connection of the monitor process, with a FIFO of
 * statements run one at a time (libpq's asynchronous API on the libevent loop; never blocks).
 *
 * The monitor keeps two: one for the monitors (its session holds the leader lock, so it is never
 * a pool) and one for outbox delivery. A lost connection fails every queued statement (the
 * callbacks run with res NULL), calls on_down and reconnects with a capped backoff; on_up runs
 * after every (re)connection once the set-up statement succeeded.
 */
#ifndef CSMCP_MCONN_H
#define CSMCP_MCONN_H

#include <libpq-fe.h>
#include <stdbool.h>

struct event_base;
struct cfg;
struct mconn;

/* res: borrowed until return, NULL on failure (err says why). */
typedef void (*mconn_cb)(const PGresult *res, const char *err, void *arg);

struct mconn_hooks {
    void (*on_up)(void *arg);
    void (*on_down)(const char *why, void *arg);
    /* NOTIFY received on this session (LISTEN in setup_sql) */
    void (*on_notify)(const char *channel, const char *payload, void *arg);
    void *arg;
};

/* name: for logs and application_name; setup_sql: run after connecting (may be NULL). */
struct mconn *mconn_new(struct event_base *base, const struct cfg *cfg, const char *name,
                        const char *password, const char *setup_sql,
                        const struct mconn_hooks *hooks);
void mconn_start(struct mconn *c);
/* Queues a statement with text parameters (copied). The callback runs exactly once, never
 * from inside this call. */
void mconn_query(struct mconn *c, const char *sql, int np, const char *const *params, mconn_cb cb,
                 void *arg);
bool mconn_up(const struct mconn *c);
/* A statement is running or queued. */
bool mconn_busy(const struct mconn *c);
void mconn_free(struct mconn *c);

#endif
