/* test_backoff.c - respawn backoff: doubling, cap, jitter bounds, no overflow, seeded RNG. */
#include <check.h>

#include "unit.h"

#include "backoff.h"

START_TEST(sequence_without_jitter_midpoint)
{
    /* r such that r % (span+1) == span/2 gives zero jitter: use span/2 directly */
    uint32_t base = 100;
    for (unsigned f = 1; f <= 8; f++) {
        uint32_t span = base * 2 / 5;
        ck_assert_uint_eq(backoff_delay_ms(f, 100, 30000, span / 2), base);
        base *= 2;
    }
    ck_assert_uint_eq(backoff_delay_ms(0, 100, 30000, 123), 0);
}
END_TEST

START_TEST(cap_and_overflow)
{
    for (unsigned f = 10; f < 5000; f += 37)
        for (uint32_t r = 0; r < 100000; r += 9973) {
            uint32_t d = backoff_delay_ms(f, 100, 30000, r);
            ck_assert_uint_le(d, 30000);
            ck_assert_uint_ge(d, 24000); /* capped base 30 s, -20% */
        }
    ck_assert_uint_le(backoff_delay_ms(4000000000u, 100, 30000, 0xffffffffu), 30000);
    /* max below min: min wins */
    ck_assert_uint_le(backoff_delay_ms(3, 500, 100, 7), 500);
}
END_TEST

START_TEST(jitter_bounds_seeded)
{
    uint64_t st = 42;
    uint32_t lo = UINT32_MAX, hi = 0;
    for (int i = 0; i < 10000; i++) {
        uint32_t d = backoff_delay_ms(1, 100, 30000, backoff_rand(&st));
        ck_assert_uint_ge(d, 80);
        ck_assert_uint_le(d, 120);
        if (d < lo)
            lo = d;
        if (d > hi)
            hi = d;
    }
    /* the jitter is actually used across its range */
    ck_assert_uint_le(lo, 82);
    ck_assert_uint_ge(hi, 118);
    /* same seed, same sequence */
    uint64_t a = 7, b = 7;
    for (int i = 0; i < 100; i++)
        ck_assert_uint_eq(backoff_rand(&a), backoff_rand(&b));
}
END_TEST

Suite *unit_suite(void)
{
    Suite *s = suite_create("backoff");
    TCase *tc = tcase_create("backoff");

    tcase_add_test(tc, sequence_without_jitter_midpoint);
    tcase_add_test(tc, cap_and_overflow);
    tcase_add_test(tc, jitter_bounds_seeded);
    suite_add_tcase(s, tc);
    return s;
}
