/* The sharded bus: several independent Redis instances (SIGNAL_REDIS_URL's
 * list), a Redis bus (bus_redis.c) on each, with its own connections,
 * heartbeat and sweep. Each room lives on one shard, the one common/shard.c
 * names, and every call about a room goes to that shard's bus; what concerns
 * the whole bus (readiness, polling, stopping) goes to all. One shard's
 * outage thus touches only its own rooms: the others carry on, and its local
 * members keep working as with one Redis that is down. A node with a single
 * URL runs the Redis bus alone, without this file. See docs/cluster.md,
 * "Sharding". */
#include <stdlib.h>

#include "bus.h"
#include "shard.h"
#include "xalloc.h"

struct bus_shard;

/* One shard's bus, and whether it last asked the relay to slow down. */
struct slot {
    struct bus_shard *owner;
    struct bus *bus;
    bool slow;
};

struct bus_shard {
    struct bus base;
    size_t n;
    struct slot *slots;
    size_t slow; /* slots that are slow: the relay is told on the first and the last */
};

/* ---- what the shards tell the relay ---- */

/* Each shard's handler reaches the relay through these, so that the one
 * aggregated call, slow, can tell the shards apart. */
static void on_deliver(void *arg, const struct bus_msg *m)
{
    const struct bus_handler *h = &((struct slot *)arg)->owner->base.h;
    h->deliver(h->arg, m);
}

static void on_ready(void *arg, const char *room)
{
    const struct bus_handler *h = &((struct slot *)arg)->owner->base.h;
    h->ready(h->arg, room);
}

static bool on_joined(void *arg, const char *room, const char *key)
{
    const struct bus_handler *h = &((struct slot *)arg)->owner->base.h;
    return h->joined(h->arg, room, key);
}

static void on_present(void *arg, const char *room, const char *key, json_t *account,
                       const char *joined_at)
{
    const struct bus_handler *h = &((struct slot *)arg)->owner->base.h;
    h->present(h->arg, room, key, account, joined_at);
}

static void on_absent(void *arg, const char *room, const char *key, const char *account_id)
{
    const struct bus_handler *h = &((struct slot *)arg)->owner->base.h;
    h->absent(h->arg, room, key, account_id);
}

/* The relay stops reading its senders while any shard is behind: a sender
 * may write to rooms on every shard. Slow on the first, not on the last. */
static void on_slow(void *arg, bool slow)
{
    struct slot *t = arg;
    struct bus_shard *b = t->owner;
    if (slow == t->slow)
        return;
    t->slow = slow;
    b->slow = slow ? b->slow + 1 : b->slow - 1;
    if (b->slow == (slow ? 1u : 0u))
        b->base.h.slow(b->base.h.arg, slow);
}

/* ---- the bus operations, routed by room ---- */

static struct bus *bus_of(struct bus *bus, const char *room)
{
    struct bus_shard *b = (struct bus_shard *)bus;
    return b->slots[shard_of(room, b->n)].bus;
}

static int sb_publish(struct bus *bus, const struct bus_msg *m)
{
    return bus_publish(bus_of(bus, m->room), m);
}

static bool sb_room_open(struct bus *bus, const char *room)
{
    return bus_room_open(bus_of(bus, room), room);
}

static void sb_room_close(struct bus *bus, const char *room)
{
    bus_room_close(bus_of(bus, room), room);
}

static void sb_join(struct bus *bus, const char *room, const char *key, json_t *account,
                    const char *joined_at)
{
    bus_join(bus_of(bus, room), room, key, account, joined_at);
}

static void sb_leave(struct bus *bus, const char *room, const char *key, const char *account_id)
{
    bus_leave(bus_of(bus, room), room, key, account_id);
}

/* ---- the whole bus ---- */

/* Ready while any shard is up: a shard's outage must not take every node
 * out of the load balancer, since only that shard's rooms lose their
 * cross-node signals. /readyz names the shards that are down. */
static const char *sb_not_ready(struct bus *bus)
{
    struct bus_shard *b = (struct bus_shard *)bus;
    for (size_t i = 0; i < b->n; i++)
        if (!bus_not_ready(b->slots[i].bus))
            return NULL;
    return "every redis shard is down";
}

static void sb_poll(struct bus *bus)
{
    struct bus_shard *b = (struct bus_shard *)bus;
    for (size_t i = 0; i < b->n; i++)
        bus_poll(b->slots[i].bus);
}

static void sb_each_shard(struct bus *bus, bus_shard_fn fn, void *arg)
{
    struct bus_shard *b = (struct bus_shard *)bus;
    for (size_t i = 0; i < b->n; i++)
        bus_each_shard(b->slots[i].bus, fn, arg);
}

static void sb_stop(struct bus *bus)
{
    struct bus_shard *b = (struct bus_shard *)bus;
    for (size_t i = 0; i < b->n; i++)
        bus_stop(b->slots[i].bus);
}

static void sb_free(struct bus *bus)
{
    struct bus_shard *b = (struct bus_shard *)bus;
    for (size_t i = 0; i < b->n; i++)
        bus_free(b->slots[i].bus);
    free(b->slots);
    free(b);
}

static const struct bus_ops shard_ops = {sb_publish, sb_room_open, sb_room_close, sb_join,
                                         sb_leave,   sb_not_ready, sb_poll,       sb_each_shard,
                                         sb_stop,    sb_free};

struct bus *bus_shard_new(struct event_base *evb, const struct config *cfg, const char *instance,
                          struct stats *stats, const struct bus_handler *h)
{
    struct bus_shard *b = xcalloc(1, sizeof(*b));
    b->base.ops = &shard_ops;
    b->base.h = *h;
    b->n = cfg->n_redis;
    b->slots = xcalloc(b->n, sizeof(*b->slots));
    for (size_t i = 0; i < b->n; i++) {
        struct slot *t = &b->slots[i];
        const struct bus_handler sh = {on_deliver, on_ready, on_joined, on_present,
                                       on_absent,  on_slow,  t};
        t->owner = b;
        t->bus = bus_redis_new(evb, cfg, i, instance, stats, &sh);
    }
    return &b->base;
}
