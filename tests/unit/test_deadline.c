/* Unit tests of the deadline lists behind the node-wide slow-reader timer. */
#include <criterion/criterion.h>

#include "deadline.h"

Test(deadline, first_is_earliest_and_falls_on_time)
{
    struct deadline_list l;
    struct deadline a = {0}, b = {0};
    deadline_list_init(&l, 1000);
    cr_assert_eq(deadline_next(&l), -1);
    cr_assert_null(deadline_due(&l, 0));
    deadline_set(&l, &a, 100);
    deadline_set(&l, &b, 300);
    cr_assert_eq(l.count, 2);
    cr_assert_eq(deadline_next(&l), 1100);
    cr_assert_null(deadline_due(&l, 1099));
    cr_assert_eq(deadline_due(&l, 1100), &a);
    deadline_clear(&l, &a);
    cr_assert_null(deadline_due(&l, 1100));
    cr_assert_eq(deadline_due(&l, 5000), &b);
}

Test(deadline, setting_again_keeps_the_deadline)
{
    struct deadline_list l;
    struct deadline a = {0};
    deadline_list_init(&l, 10);
    deadline_set(&l, &a, 0);
    deadline_set(&l, &a, 50);
    cr_assert_eq(l.count, 1);
    cr_assert_eq(deadline_next(&l), 10);
}

Test(deadline, clear_anywhere_and_when_not_set)
{
    struct deadline_list l;
    struct deadline d[4] = {{0}};
    deadline_list_init(&l, 10);
    deadline_clear(&l, &d[0]); /* not set: nothing happens */
    for (int i = 0; i < 4; i++)
        deadline_set(&l, &d[i], i);
    deadline_clear(&l, &d[2]); /* middle */
    deadline_clear(&l, &d[3]); /* last */
    deadline_clear(&l, &d[0]); /* first */
    cr_assert_eq(l.count, 1);
    cr_assert_eq(l.first, &d[1]);
    cr_assert_eq(l.last, &d[1]);
    cr_assert_not(d[0].set);
    deadline_set(&l, &d[0], 7); /* set again: last */
    cr_assert_eq(l.last, &d[0]);
    cr_assert_eq(deadline_next(&l), 11);
}

Test(deadline, stays_in_order_when_the_clock_read_lags)
{
    struct deadline_list l;
    struct deadline a = {0}, b = {0};
    deadline_list_init(&l, 10);
    deadline_set(&l, &a, 100);
    deadline_set(&l, &b, 99);
    cr_assert_eq(b.at_ms, 110);
    cr_assert_eq(deadline_due(&l, 110), &a);
}
