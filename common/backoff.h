/*
 * backoff.h - exponential backoff with jitter for worker respawns (pure; the random source is a
 * parameter so tests can pin it).
 */
#ifndef CSMCP_BACKOFF_H
#define CSMCP_BACKOFF_H

#include <stdint.h>

/*
 * Delay before the next attempt after `failures` consecutive failures (>= 1):
 * min_ms * 2^(failures-1), capped at max_ms, then jittered by +-20% using r (a uniform 32-bit
 * random value) and clamped to [min_ms * 0.8, max_ms]. failures 0 returns 0 (no delay).
 */
uint32_t backoff_delay_ms(unsigned failures, uint32_t min_ms, uint32_t max_ms, uint32_t r);

/* splitmix64 step over *state: a small, seedable PRNG for jitter (not for secrets). */
uint32_t backoff_rand(uint64_t *state);

#endif
