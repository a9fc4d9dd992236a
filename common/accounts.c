/* Per-account join budget and connection count; see accounts.h. */
#include "accounts.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bucket.h"
#include "xalloc.h"

/* One out-of-memory policy: uthash's tables are allocated like the rest. */
#define uthash_malloc(sz) xmalloc(sz)
#include <uthash.h>
#include <utlist.h>

struct entry {
    UT_hash_handle hh;
    struct entry *idle_prev, *idle_next; /* on t->idle while conns == 0 */
    struct bucket joins;
    int64_t touched_ms;     /* last join, refusal or leave */
    int64_t quiet_until_ms; /* no refusal logged before this */
    unsigned long conns;
    char id[]; /* the account id, the key */
};

struct accounts {
    struct accounts_limits limits;
    /* An idle entry (no connection) touched this long ago has a full
     * bucket, and its last logged refusal is log_every_ms old: forgetting
     * it changes nothing. */
    int64_t forget_after_ms;
    struct entry *table;
    /* Entries without connections, by touched_ms: the oldest first. Each
     * is appended when touched at "now", so the order holds on a monotonic
     * clock. */
    struct entry *idle;
    size_t n;
};

/* At most this many idle entries are removed at each join: more than the
 * one a join can add, so idle ones never pile up while joins go on. */
#define PRUNE_PER_JOIN 2

struct accounts *accounts_new(const struct accounts_limits *limits)
{
    struct accounts *t = xcalloc(1, sizeof(*t));
    t->limits = *limits;
    int64_t refill_ms = (int64_t)ceil(limits->join_burst * 1000.0 / limits->join_rate_per_s);
    t->forget_after_ms = refill_ms > limits->log_every_ms ? refill_ms : limits->log_every_ms;
    return t;
}

/* clang's analyzer cannot follow uthash's table: it reports a use after
 * free (HASH_DEL unlinks each entry before it is freed), and a table found
 * empty while the idle list, whose entries are all in it, is not. */
// NOLINTBEGIN(clang-analyzer-unix.Malloc,clang-analyzer-core.NullDereference)
static void remove_entry(struct accounts *t, struct entry *e)
{
    HASH_DEL(t->table, e);
    if (!e->conns)
        DL_DELETE2(t->idle, e, idle_prev, idle_next);
    t->n--;
    free(e);
}

void accounts_free(struct accounts *t)
{
    if (!t)
        return;
    while (t->table)
        remove_entry(t, t->table);
    free(t);
}

/* Removes up to max idle entries that have been idle long enough to forget. */
static void prune(struct accounts *t, int64_t now_ms, int max)
{
    for (int i = 0; i < max && t->idle && now_ms - t->idle->touched_ms >= t->forget_after_ms; i++)
        remove_entry(t, t->idle);
}
// NOLINTEND(clang-analyzer-unix.Malloc,clang-analyzer-core.NullDereference)

/* Marks e touched now; an idle one moves to the end of the idle list. */
static void touch(struct accounts *t, struct entry *e, int64_t now_ms)
{
    e->touched_ms = now_ms;
    if (!e->conns) {
        DL_DELETE2(t->idle, e, idle_prev, idle_next);
        DL_APPEND2(t->idle, e, idle_prev, idle_next);
    }
}

static struct entry *find_or_add(struct accounts *t, const char *id, int64_t now_ms)
{
    struct entry *e;
    HASH_FIND_STR(t->table, id, e);
    if (e)
        return e;
    size_t len = strlen(id);
    e = xcalloc(1, sizeof(*e) + len + 1);
    memcpy(e->id, id, len + 1);
    bucket_init(&e->joins, t->limits.join_burst, now_ms);
    e->touched_ms = now_ms;
    HASH_ADD_KEYPTR(hh, t->table, e->id, len, e);
    DL_APPEND2(t->idle, e, idle_prev, idle_next);
    t->n++;
    return e;
}

struct accounts_answer accounts_join(struct accounts *t, const char *id, int64_t now_ms)
{
    prune(t, now_ms, PRUNE_PER_JOIN);
    struct entry *e = find_or_add(t, id, now_ms);
    const struct accounts_limits *l = &t->limits;
    struct accounts_answer a = {ACCOUNTS_ADMIT, 0, false};
    touch(t, e, now_ms);
    /* The cap first: an account at it spends no join on being refused. */
    if (e->conns >= l->max_conns) {
        a.verdict = ACCOUNTS_TOO_MANY;
    } else if (!bucket_take(&e->joins, 1, l->join_rate_per_s, l->join_burst, now_ms)) {
        a.verdict = ACCOUNTS_TOO_FAST;
        /* bucket_take has just refilled it: the time the missing part takes,
         * in whole seconds up (less a hair: 1 / (20 / 60.0) is above 3). */
        a.retry_after_s = (long)ceil((1.0 - e->joins.tokens) / l->join_rate_per_s - 1e-6);
        if (a.retry_after_s < 1)
            a.retry_after_s = 1;
    } else {
        if (!e->conns++)
            DL_DELETE2(t->idle, e, idle_prev, idle_next);
        return a;
    }
    if (now_ms >= e->quiet_until_ms) {
        a.log = true;
        e->quiet_until_ms = now_ms + l->log_every_ms;
    }
    return a;
}

void accounts_leave(struct accounts *t, const char *id, int64_t now_ms)
{
    struct entry *e;
    HASH_FIND_STR(t->table, id, e);
    if (!e || !e->conns)
        return;
    if (!--e->conns)
        DL_APPEND2(t->idle, e, idle_prev, idle_next);
    e->touched_ms = now_ms;
}

size_t accounts_size(const struct accounts *t)
{
    return t->n;
}
