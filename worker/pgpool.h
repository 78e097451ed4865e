/*
 * pgpool.h - per-worker PostgreSQL connection pool on libpq's asynchronous API.
 *
 * Never blocks the event loop: connections are made with PQconnectStart/PQconnectPoll and
 * queries run with PQsendQueryParams/PQsendQueryPrepared, driven by socket readiness. Statements
 * are prepared once per connection (keyed by their text). When every connection is busy a
 * query waits in a FIFO queue up to database.queue_timeout_ms.
 */
#ifndef CSMCP_PGPOOL_H
#define CSMCP_PGPOOL_H

#include <stdbool.h>
#include <libpq-fe.h>

struct event_base;
struct cfg;
struct pgpool;

/*
 * Completion callback, called exactly once, never from inside pgpool_query itself.
 * res: the result on success (PGRES_TUPLES_OK / PGRES_COMMAND_OK), borrowed until the callback
 * returns; NULL on failure. err: NULL on success, else a message fit for a client.
 * sqlstate: the 5-character SQLSTATE of a server error, "08006"-class for connection loss,
 * "57014" for a timeout, or NULL. retryable: the failure was transient (connection lost,
 * queue timeout, pool recovering) and the same call may succeed later.
 */
typedef void (*pgpool_cb)(const PGresult *res, const char *err, const char *sqlstate,
                          bool retryable, void *arg);

/* Creates the pool and starts connecting in the background. Caller frees with pgpool_free. */
int pgpool_create(struct event_base *base, const struct cfg *cfg, struct pgpool **out);
void pgpool_free(struct pgpool *p);

/* Runs one parameterized statement (text parameters, text results) in its own implicit
 * transaction. params are copied. Returns 0, or -1 if the query cannot be queued at all. */
int pgpool_query(struct pgpool *p, const char *sql, int nparams, const char *const *params,
                 pgpool_cb cb, void *arg);

/*
 * Like pgpool_query for a statement that may read from the replica (database.read_url, tools
 * marked "replica_ok"): runs on the replica when its last lag check (about every second) is
 * fresh and within database.max_replica_lag, else on the primary; a retryable failure on the
 * replica re-runs it once on the primary. Without read_url it is pgpool_query.
 */
int pgpool_query_read(struct pgpool *p, const char *sql, int nparams, const char *const *params,
                      pgpool_cb cb, void *arg);
/* The replica's last measured lag in seconds; false without a replica or a measurement. */
bool pgpool_replica_status(struct pgpool *p, double *lag_s);

/* At least one connection is up and the pool is not failing. */
bool pgpool_ready(struct pgpool *p);
/* One-line human status for /ready and logs, e.g. "4/4 connected, 1 busy, 0 waiting". */
void pgpool_status(struct pgpool *p, char *buf, size_t len);

#endif
