/* Unit tests of the per-account join budget and connection cap
 * (common/accounts.c): the decisions, Retry-After, one log per interval,
 * and that idle entries go away so the table stays bounded. */
#include <criterion/criterion.h>
#include <stdio.h>

#include "accounts.h"

/* 60 joins a minute (one a second), a burst of 3, 2 connections, a log
 * line at most every 10 s. */
static const struct accounts_limits limits = {1.0, 3, 2, 10000};

Test(accounts, burst_then_one_join_per_refill)
{
    struct accounts *t = accounts_new(&limits);
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(accounts_join(t, "a", 1000).verdict, ACCOUNTS_ADMIT);
        accounts_leave(t, "a", 1000);
    }
    struct accounts_answer a = accounts_join(t, "a", 1000);
    cr_assert_eq(a.verdict, ACCOUNTS_TOO_FAST);
    cr_assert_eq(a.retry_after_s, 1);
    cr_assert_eq(accounts_join(t, "a", 1500).verdict, ACCOUNTS_TOO_FAST, "half a join");
    cr_assert_eq(accounts_join(t, "a", 2000).verdict, ACCOUNTS_ADMIT, "refusals took nothing");
    cr_assert_eq(accounts_join(t, "b", 2000).verdict, ACCOUNTS_ADMIT, "another account's own");
    accounts_free(t);
}

Test(accounts, retry_after_rounds_up)
{
    const struct accounts_limits slow = {1.0 / 8, 1, 5, 10000}; /* one join per 8 s */
    struct accounts *t = accounts_new(&slow);
    cr_assert_eq(accounts_join(t, "a", 0).verdict, ACCOUNTS_ADMIT);
    cr_assert_eq(accounts_join(t, "a", 0).retry_after_s, 8);
    cr_assert_eq(accounts_join(t, "a", 2500).retry_after_s, 6, "5.5 s rounds up");
    cr_assert_eq(accounts_join(t, "a", 8000).verdict, ACCOUNTS_ADMIT);
    cr_assert_eq(accounts_join(t, "a", 15990).retry_after_s, 1, "10 ms is a second");
    /* 20 a minute: 3 s, though 1 / (20 / 60) is a hair above 3 in floating point. */
    const struct accounts_limits third = {20.0 / 60, 1, 5, 10000};
    struct accounts *u = accounts_new(&third);
    cr_assert_eq(accounts_join(u, "a", 0).verdict, ACCOUNTS_ADMIT);
    cr_assert_eq(accounts_join(u, "a", 0).retry_after_s, 3);
    accounts_free(u);
    accounts_free(t);
}

Test(accounts, cap_on_concurrent_connections)
{
    const struct accounts_limits many = {1000, 1000, 2, 10000};
    struct accounts *t = accounts_new(&many);
    cr_assert_eq(accounts_join(t, "a", 0).verdict, ACCOUNTS_ADMIT);
    cr_assert_eq(accounts_join(t, "a", 0).verdict, ACCOUNTS_ADMIT);
    struct accounts_answer a = accounts_join(t, "a", 0);
    cr_assert_eq(a.verdict, ACCOUNTS_TOO_MANY);
    cr_assert_eq(a.retry_after_s, 0, "no meaningful Retry-After at the cap");
    accounts_leave(t, "a", 1);
    cr_assert_eq(accounts_join(t, "a", 1).verdict, ACCOUNTS_ADMIT, "a slot freed by a close");
    accounts_free(t);
}

Test(accounts, cap_refusal_spends_no_join)
{
    const struct accounts_limits l = {1.0 / 60, 3, 1, 10000};
    struct accounts *t = accounts_new(&l);
    cr_assert_eq(accounts_join(t, "a", 0).verdict, ACCOUNTS_ADMIT);
    for (int i = 0; i < 10; i++)
        cr_assert_eq(accounts_join(t, "a", 0).verdict, ACCOUNTS_TOO_MANY);
    accounts_leave(t, "a", 0);
    cr_assert_eq(accounts_join(t, "a", 0).verdict, ACCOUNTS_ADMIT, "2 of 3 joins were left");
    accounts_leave(t, "a", 0);
    cr_assert_eq(accounts_join(t, "a", 0).verdict, ACCOUNTS_ADMIT);
    accounts_leave(t, "a", 0);
    cr_assert_eq(accounts_join(t, "a", 0).verdict, ACCOUNTS_TOO_FAST);
    accounts_free(t);
}

Test(accounts, one_log_per_account_per_interval)
{
    struct accounts *t = accounts_new(&limits);
    int logged = 0, admitted = 0;
    for (int64_t ms = 0; ms < 10000; ms += 10) {
        struct accounts_answer a = accounts_join(t, "a", ms);
        if (a.verdict == ACCOUNTS_ADMIT) {
            admitted++;
            accounts_leave(t, "a", ms);
        }
        logged += a.log;
    }
    cr_assert_eq(admitted, 3 + 9, "the burst, then one a second");
    cr_assert_eq(logged, 1, "one line in the first 10 s of refusals");
    struct accounts_answer a;
    while ((a = accounts_join(t, "a", 10100)).verdict == ACCOUNTS_ADMIT)
        accounts_leave(t, "a", 10100);
    cr_assert(a.log, "the next refusal after the interval");
    cr_assert(accounts_join(t, "b", 10000).verdict == ACCOUNTS_ADMIT);
    cr_assert_not(accounts_join(t, "b", 10000).log, "b is admitted: nothing to log");
    accounts_free(t);
}

Test(accounts, leave_of_unknown_account_is_harmless)
{
    struct accounts *t = accounts_new(&limits);
    accounts_leave(t, "nobody", 0);
    cr_assert_eq(accounts_size(t), 0);
    cr_assert_eq(accounts_join(t, "a", 0).verdict, ACCOUNTS_ADMIT);
    accounts_leave(t, "a", 0);
    accounts_leave(t, "a", 0); /* once too often */
    cr_assert_eq(accounts_join(t, "a", 0).verdict, ACCOUNTS_ADMIT);
    cr_assert_eq(accounts_join(t, "a", 0).verdict, ACCOUNTS_ADMIT);
    cr_assert_eq(accounts_join(t, "a", 0).verdict, ACCOUNTS_TOO_MANY,
                 "the count never went below 0");
    accounts_free(t);
}

/* Entries without connections are forgotten once their bucket is full again
 * and their log interval is over (here 10 s), a few at each join; entries
 * with connections stay. */
Test(accounts, idle_entries_are_forgotten)
{
    struct accounts *t = accounts_new(&limits);
    char id[32];
    for (int i = 0; i < 1000; i++) {
        snprintf(id, sizeof(id), "acct-%d", i);
        accounts_join(t, id, i);
        if (i % 10)
            accounts_leave(t, id, i);
    }
    cr_assert_eq(accounts_size(t), 1000);
    /* Joins of fresh accounts long after: each removes two old idle ones. */
    for (int i = 0; i < 1000; i++) {
        snprintf(id, sizeof(id), "late-%d", i);
        accounts_join(t, id, 100000 + i);
        accounts_leave(t, id, 100000 + i);
    }
    /* 100 still connected, the 1000 late ones (not yet idle long enough). */
    cr_assert_eq(accounts_size(t), 1100, "size %zu", accounts_size(t));
    for (int i = 0; i < 600; i++)
        accounts_join(t, "steady", 200000 + i * 1000);
    cr_assert_eq(accounts_size(t), 101, "size %zu", accounts_size(t));
    /* The connected ones kept their count. */
    cr_assert_eq(accounts_join(t, "acct-0", 900000).verdict, ACCOUNTS_ADMIT);
    cr_assert_eq(accounts_join(t, "acct-0", 900000).verdict, ACCOUNTS_TOO_MANY);
    accounts_free(t);
}

/* A forgotten entry comes back as new: a full bucket, no connection. */
Test(accounts, forgotten_account_starts_afresh)
{
    struct accounts *t = accounts_new(&limits);
    for (int i = 0; i < 3; i++) {
        accounts_join(t, "a", 0);
        accounts_leave(t, "a", 0);
    }
    cr_assert_eq(accounts_join(t, "a", 0).verdict, ACCOUNTS_TOO_FAST);
    accounts_join(t, "b", 20000); /* removes a: idle for 20 s */
    cr_assert_eq(accounts_size(t), 1);
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(accounts_join(t, "a", 20000).verdict, ACCOUNTS_ADMIT);
        accounts_leave(t, "a", 20000);
    }
    accounts_free(t);
}
