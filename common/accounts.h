/* The per-account limits of one node on joining: for each account, how many
 * connections it holds here and a token bucket of its joins, and whether
 * one more upgrade may join (docs/operations.md, "Joins and connections per
 * account"). Pure bookkeeping on a clock the caller passes in: no timers.
 *
 * An entry exists while its account has connections here, its bucket is not
 * full, or a refusal of it was logged less than log_every_ms ago. Idle
 * entries are removed lazily, oldest first, a few at each join, so memory is
 * bounded by the connections plus the accounts that joined recently, and
 * nothing runs while nobody joins. */
#ifndef SIGNAL_ACCOUNTS_H
#define SIGNAL_ACCOUNTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct accounts; /* opaque */

struct accounts_limits {
    double join_rate_per_s;  /* bucket refill */
    double join_burst;       /* bucket size, >= 1 */
    unsigned long max_conns; /* concurrent connections of one account, >= 1 */
    int64_t log_every_ms;    /* at most one refusal logged per account per this */
};

enum accounts_verdict {
    ACCOUNTS_ADMIT,    /* counted: a join taken, a connection until accounts_leave */
    ACCOUNTS_TOO_MANY, /* at max_conns already */
    ACCOUNTS_TOO_FAST, /* no join left in the bucket */
};

struct accounts_answer {
    enum accounts_verdict verdict;
    long retry_after_s; /* ACCOUNTS_TOO_FAST: seconds until a join fits (>= 1); else 0 */
    bool log;           /* refused, and the first refusal of the account to log in a while */
};

struct accounts *accounts_new(const struct accounts_limits *limits);
/* Frees the table and every entry; NULL is fine. */
void accounts_free(struct accounts *t);

/* One upgrade of account id at now_ms (monotonic): a refusal takes nothing
 * (neither a join nor a slot), so a client retrying too early is not kept
 * out for longer. */
struct accounts_answer accounts_join(struct accounts *t, const char *id, int64_t now_ms);
/* A connection of id that accounts_join admitted has closed. */
void accounts_leave(struct accounts *t, const char *id, int64_t now_ms);
/* Entries held now, idle ones not yet removed included. */
size_t accounts_size(const struct accounts *t);

#endif
