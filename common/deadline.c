/* Deadlines sharing one delay; see deadline.h. */
#include "deadline.h"

void deadline_list_init(struct deadline_list *l, int64_t delay_ms)
{
    l->first = l->last = NULL;
    l->delay_ms = delay_ms;
    l->count = 0;
}

void deadline_set(struct deadline_list *l, struct deadline *d, int64_t now_ms)
{
    if (d->set)
        return;
    d->at_ms = now_ms + l->delay_ms;
    /* A clock read earlier by the caller may lag the last one set: the list
     * stays in order all the same. */
    if (l->last && d->at_ms < l->last->at_ms)
        d->at_ms = l->last->at_ms;
    d->set = true;
    d->next = NULL;
    d->prev = l->last;
    if (l->last)
        l->last->next = d;
    else
        l->first = d;
    l->last = d;
    l->count++;
}

void deadline_clear(struct deadline_list *l, struct deadline *d)
{
    if (!d->set)
        return;
    if (d->prev)
        d->prev->next = d->next;
    else
        l->first = d->next;
    if (d->next)
        d->next->prev = d->prev;
    else
        l->last = d->prev;
    d->prev = d->next = NULL;
    d->set = false;
    l->count--;
}

struct deadline *deadline_due(const struct deadline_list *l, int64_t now_ms)
{
    return l->first && l->first->at_ms <= now_ms ? l->first : NULL;
}

int64_t deadline_next(const struct deadline_list *l)
{
    return l->first ? l->first->at_ms : -1;
}
