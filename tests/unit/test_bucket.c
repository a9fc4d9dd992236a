/* Unit tests of the token bucket behind the per-connection rate limit. */
#include <criterion/criterion.h>

#include "bucket.h"

Test(bucket, burst_then_refill)
{
    struct bucket b;
    bucket_init(&b, 3, 1000);
    for (int i = 0; i < 3; i++)
        cr_assert(bucket_take(&b, 1, 10, 3, 1000));
    cr_assert_not(bucket_take(&b, 1, 10, 3, 1000));
    cr_assert_not(bucket_take(&b, 1, 10, 3, 1050)); /* half a token */
    cr_assert(bucket_take(&b, 1, 10, 3, 1100));
    cr_assert_not(bucket_take(&b, 1, 10, 3, 1100));
}

Test(bucket, never_exceeds_burst)
{
    struct bucket b;
    bucket_init(&b, 2, 0);
    cr_assert(bucket_take(&b, 1, 1000, 2, 1000000));
    cr_assert(bucket_take(&b, 1, 1000, 2, 1000000));
    cr_assert_not(bucket_take(&b, 1, 1000, 2, 1000000));
}

Test(bucket, clock_going_back_is_harmless)
{
    struct bucket b;
    bucket_init(&b, 1, 5000);
    cr_assert(bucket_take(&b, 1, 1, 1, 5000));
    cr_assert_not(bucket_take(&b, 1, 1, 1, 4000));
}

Test(bucket, cost_in_bytes)
{
    struct bucket b;
    bucket_init(&b, 1000, 0);
    cr_assert(bucket_take(&b, 600, 100, 1000, 0));
    cr_assert_not(bucket_take(&b, 600, 100, 1000, 0));
    cr_assert(bucket_take(&b, 600, 100, 1000, 2000)); /* 400 + 200 refilled */
}
