/*
 * pgpool.c - PLACEHOLDER until the data engineer's pool lands: never ready, every query fails
 * with a clear error. Replaced wholesale by the real async pool.
 */
#include "pgpool.h"

#include <stdio.h>
#include <stdlib.h>

struct pgpool {
    int unused;
};

int pgpool_create(struct event_base *base, const struct cfg *cfg, struct pgpool **out)
{
    *out = calloc(1, sizeof(struct pgpool));
    return *out ? 0 : -1;
}

void pgpool_free(struct pgpool *p)
{
    free(p);
}

int pgpool_query(struct pgpool *p, const char *sql, int nparams, const char *const *params,
                 pgpool_cb cb, void *arg)
{
    return -1;
}

bool pgpool_ready(struct pgpool *p)
{
    return false;
}

void pgpool_status(struct pgpool *p, char *buf, size_t len)
{
    snprintf(buf, len, "database pool not built");
}
