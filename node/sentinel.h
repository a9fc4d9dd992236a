/* Redis Sentinel, for node/redis.c: asking the sentinels of a
 * redis+sentinel:// URL where its master is, and following failovers. One
 * watcher per master (its name and sentinel list) in the process, shared by
 * every connection to it: it keeps a SUBSCRIBE to +switch-master on one
 * sentinel at a time and tells each connection when the master moves.
 * Everything runs on the node's loop and never blocks. */
#ifndef SIGNAL_SENTINEL_H
#define SIGNAL_SENTINEL_H

#include <event2/event.h>

#include "config.h"

struct sentinel;
struct sentinel_ask;

/* The master moved to host:port (a +switch-master event for its name). */
typedef void (*sentinel_switch_fn)(void *arg, const char *host, int port);
/* The answer to sentinel_ask: the master's address, or host NULL and why no
 * sentinel told it. */
typedef void (*sentinel_found_fn)(void *arg, const char *host, int port, const char *why);

/* Returns the watcher of url's master (made on first use), with fn(arg)
 * added to those it tells of a failover. Out of memory aborts. */
struct sentinel *sentinel_attach(struct event_base *evb, const struct redis_url *url,
                                 sentinel_switch_fn fn, void *arg);
/* Removes what sentinel_attach added for arg; the last one frees s. */
void sentinel_detach(struct sentinel *s, void *arg);

/* Asks the sentinels in turn, each with a short timeout, for the master's
 * address; fn runs once with the first answer, never before this returns,
 * unless the ask is cancelled first. */
struct sentinel_ask *sentinel_ask(struct sentinel *s, sentinel_found_fn fn, void *arg);
/* Gives up an ask whose fn has not run yet: fn will not run. */
void sentinel_ask_cancel(struct sentinel_ask *q);

#endif
