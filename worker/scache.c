/*
 * scache.c - per-worker cache of session state checked in Redis (see scache.h).
 *
 * Invariants: direct-mapped table of SCACHE_SIZE entries (a collision evicts); an entry is
 * returned only for the same key, the same pub/sub epoch and before its deadline; caps are
 * owned by the entry. Nothing here talks to Redis: mcp.c decides when to trust the cache
 * (epoch != 0, i.e. the invalidation channel is confirmed) and feeds the invalidations.
 */
#include "scache.h"

#include <stdlib.h>
#include <string.h>

#define SCACHE_SIZE     1024 /* power of two */
#define SCACHE_CAPS_MAX 4096

struct ent {
    char key[SESSION_KEY_MAX];
    uint32_t epoch;
    int64_t until_ms;
    int lvl;
    char *caps;
    char principal[96];
};

static struct ent *table;
static uint64_t generation;

static struct ent *slot(const char *key)
{
    uint32_t h = 2166136261u;
    for (const char *p = key; *p; p++)
        h = (h ^ (uint8_t)*p) * 16777619u;
    return &table[h & (SCACHE_SIZE - 1)];
}

static void clear_ent(struct ent *e)
{
    free(e->caps);
    memset(e, 0, sizeof *e);
}

bool scache_get(const char *key, uint32_t epoch, int64_t now_ms, struct scache_hit *hit)
{
    if (table == NULL || epoch == 0)
        return false;
    struct ent *e = slot(key);
    if (e->key[0] == '\0' || e->epoch != epoch || now_ms >= e->until_ms || strcmp(e->key, key))
        return false;
    hit->lvl = e->lvl;
    hit->caps = e->caps;
    hit->principal = e->principal;
    return true;
}

void scache_put(const char *key, uint32_t epoch, int64_t now_ms, int ttl_ms, int lvl,
                const char *caps, const char *principal)
{
    if (epoch == 0 || ttl_ms <= 0 || strlen(key) >= SESSION_KEY_MAX ||
        strlen(principal) >= sizeof table->principal || (caps && strlen(caps) >= SCACHE_CAPS_MAX))
        return;
    if (table == NULL && (table = calloc(SCACHE_SIZE, sizeof *table)) == NULL)
        return;
    struct ent *e = slot(key);
    char *c = NULL;
    if (caps && (c = strdup(caps)) == NULL)
        return;
    clear_ent(e);
    strcpy(e->key, key);
    strcpy(e->principal, principal);
    e->caps = c;
    e->epoch = epoch;
    e->until_ms = now_ms + ttl_ms;
    e->lvl = lvl;
}

void scache_drop(const char *key)
{
    generation++;
    if (table == NULL)
        return;
    struct ent *e = slot(key);
    if (strcmp(e->key, key) == 0)
        clear_ent(e);
}

uint64_t scache_generation(void)
{
    return generation;
}

void scache_shutdown(void)
{
    if (table == NULL)
        return;
    for (int i = 0; i < SCACHE_SIZE; i++)
        free(table[i].caps);
    free(table);
    table = NULL;
}
