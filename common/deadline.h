/* Deadlines that share one delay, kept in the order they were set, so that
 * the first is always the earliest: one timer watching the first serves any
 * number of them (a timer per connection made idle CPU grow with the square
 * of the connections). Intrusive: an entry lives in what it times. */
#ifndef SIGNAL_DEADLINE_H
#define SIGNAL_DEADLINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct deadline {
    struct deadline *prev, *next;
    int64_t at_ms;
    bool set; /* on a list */
};

struct deadline_list {
    struct deadline *first, *last;
    int64_t delay_ms;
    size_t count;
};

void deadline_list_init(struct deadline_list *l, int64_t delay_ms);
/* Sets d to fall delay_ms after now_ms, last on l; a d already set keeps its
 * deadline. now_ms comes from a monotonic clock, so the list stays in order. */
void deadline_set(struct deadline_list *l, struct deadline *d, int64_t now_ms);
/* Takes d off l; nothing when it is not set. */
void deadline_clear(struct deadline_list *l, struct deadline *d);
/* The first deadline of l if it has fallen at now_ms (the caller clears it),
 * else NULL. */
struct deadline *deadline_due(const struct deadline_list *l, int64_t now_ms);
/* When the first deadline of l falls, or -1 when l is empty. */
int64_t deadline_next(const struct deadline_list *l);

#endif
