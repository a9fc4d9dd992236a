/* Arming a libevent timer in milliseconds, the unit of every setting and
 * constant of the node, instead of a struct timeval built at each call. */
#ifndef SIGNAL_TIMER_H
#define SIGNAL_TIMER_H

#include <event2/event.h>

/* Arms ev (or re-arms it: the earlier deadline is dropped) to fire ms
 * milliseconds from now; ms >= 0. Returns evtimer_add's result: 0, or -1. */
static inline int timer_add_ms(struct event *ev, long ms)
{
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    return evtimer_add(ev, &tv);
}

#endif
