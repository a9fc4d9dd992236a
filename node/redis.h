/* A Redis connection on the node's libevent loop (hiredis async) that stays
 * up by itself: TLS with rediss:// (one context for the process; the
 * server's certificate and its name are checked), connect timeout, AUTH and
 * SELECT from the URL, reconnect with capped exponential backoff and jitter,
 * one log line per state change. hiredis frees its context after the
 * connect-failure and disconnect callbacks and never reconnects an async
 * context, and its own connect timeout ends with the TCP connect, before
 * TLS, AUTH and SELECT: so this file owns all of that. */
#ifndef SIGNAL_REDIS_H
#define SIGNAL_REDIS_H

#include <event2/event.h>
#include <hiredis/async.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"

/* Debian 12 installs hiredis 0.14's headers; the node is built against the
 * hiredis 1.2.0 that tools/setup.sh builds, which CMakeLists.txt puts first. */
#if !defined(HIREDIS_MAJOR) || HIREDIS_MAJOR < 1
#error "hiredis 0.14 headers found: build with -DSIGNAL_HIREDIS_PREFIX from tools/setup.sh"
#endif

struct redis;
typedef void (*redis_state_fn)(void *arg, bool up);

/* Starts connecting to url on base; name is its role, for logs and metrics.
 * on_state(arg, up) runs when the first attempt fails and on each change
 * after. Returns the connection (out of memory aborts, xalloc.h). */
struct redis *redis_new(struct event_base *evb, const struct redis_url *url, const char *name,
                        redis_state_fn on_state, void *arg);
/* Closes at once (callbacks still due get NULL replies) and frees r. */
void redis_free(struct redis *r);
bool redis_ready(const struct redis *r);
/* True until the first attempt to connect has succeeded or failed. */
bool redis_connecting(const struct redis *r);
/* Sends a command when the connection is ready; fn then always runs, with a
 * NULL reply if the connection is lost first. Returns -1 when not ready. */
int redis_command(struct redis *r, redisCallbackFn *fn, void *privdata, const char *fmt, ...);

/* The same with a command already in Redis protocol (RESP) form. */
int redis_formatted(struct redis *r, redisCallbackFn *fn, void *privdata, const char *cmd,
                    size_t len);
/* Reads what has arrived, now, as if the loop had woken for it. */
void redis_read_now(struct redis *r);
/* Bytes written to the connection but not yet sent to Redis. */
size_t redis_unsent_bytes(const struct redis *r);
/* Stops reconnecting and closes once the replies still due have arrived (at
 * most 1 s); redis_free is still needed after that. */
void redis_close(struct redis *r);

/* Names the shard of SIGNAL_REDIS_URL's list a connection belongs to, for
 * the metrics (with several shards); -1, the default, for none. */
void redis_set_shard(struct redis *r, int shard);

/* Calls fn for every connection of the process, by name (its role) and
 * shard (-1: none). */
typedef void (*redis_each_fn)(void *arg, const char *name, int shard, bool up, uint64_t reconnects);
void redis_each(redis_each_fn fn, void *arg);

/* Drops a connection that stopped answering (callbacks get NULL replies) and
 * reconnects with the usual backoff. */
void redis_drop(struct redis *r, const char *why);

/* The TLS context of every rediss:// connection of the process: Redis's
 * certificate must chain to SIGNAL_REDIS_TLS_CA_FILE (the system's CAs when
 * unset), with the client certificate and key when set. Needed before
 * redis_new with a rediss:// URL. Returns 0, or -1 with why (size n), which
 * names the setting at fault. */
int redis_tls_init(const struct config *c, char *why, size_t n);
/* Frees it, once every connection is freed. */
void redis_tls_free(void);

#endif
