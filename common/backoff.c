/*
 * backoff.c - exponential backoff with jitter (systemd 252 has no RestartSteps=, so the
 * supervisor owns the respawn policy).
 *
 * Invariants: the delay never exceeds max_ms, never drops below 80% of min_ms for a failure,
 * and grows monotonically (before jitter) with the failure count; no overflow for any count.
 */
#include "backoff.h"

uint32_t backoff_delay_ms(unsigned failures, uint32_t min_ms, uint32_t max_ms, uint32_t r)
{
    uint64_t base = min_ms, lo, d;
    int64_t span, off;

    if (failures == 0)
        return 0;
    if (max_ms < min_ms)
        max_ms = min_ms;
    for (unsigned i = 1; i < failures && base < max_ms; i++)
        base *= 2;
    if (base > max_ms)
        base = max_ms;
    /* jitter in [-20%, +20%] of base */
    span = (int64_t)(base * 2 / 5);
    off = span ? (int64_t)((uint64_t)r % (uint64_t)(span + 1)) - span / 2 : 0;
    d = (uint64_t)((int64_t)base + off);
    lo = (uint64_t)min_ms * 4 / 5;
    if (d < lo)
        d = lo;
    if (d > max_ms)
        d = max_ms;
    return (uint32_t)d;
}

uint32_t backoff_rand(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return (uint32_t)((z ^ (z >> 31)) >> 32);
}
