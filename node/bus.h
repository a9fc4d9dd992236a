/* The bus carries a room's signals and presence between the nodes that have
 * members in it. Above the bus the code is the same for one node (in-process
 * bus) and for a cluster (Redis bus): the relay delivers to its own members
 * and hands the bus each validated packet for the other nodes, and its own
 * members' joins and leaves; the bus calls back with what other nodes sent
 * and with every change of the room's cluster-wide presence, the node's own
 * included (applied at once, so local peers never wait on Redis). A bus sees
 * no connection, room or node: only room ids, connection keys and accounts. */
#ifndef SIGNAL_BUS_H
#define SIGNAL_BUS_H

#include <event2/event.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "packet.h"

struct stats;

struct bus_msg {
    const char *room;
    const char *origin;   /* the sending node's instance id */
    uint64_t origin_conn; /* that connection does not get its own packet */
    const char *to;       /* account id, or NULL for every member */
    struct packet *packet;
};

/* What the bus calls; arg is the node. */
struct bus_handler {
    void (*deliver)(void *arg, const struct bus_msg *m);
    /* A room that bus_room_open left pending may take members now. */
    void (*ready)(void *arg, const char *room);
    /* bus_join has written the connection's presence (or could not, and
     * will later): false when the connection has gone meanwhile. */
    bool (*joined)(void *arg, const char *room, const char *key);
    /* A connection is in the room (again: callers ignore a known key). */
    void (*present)(void *arg, const char *room, const char *key, json_t *account,
                    const char *joined_at);
    /* A connection has left the room (unknown keys are ignored). */
    void (*absent)(void *arg, const char *room, const char *key, const char *account_id);
    /* Backpressure: true when too much of what this node published has not
     * come back through its own subscription yet (Redis is not keeping up
     * with it, and would soon cut a subscriber): the node should stop
     * reading its clients until false follows. */
    void (*slow)(void *arg, bool slow);
    void *arg;
};

/* One Redis shard of the bus, as /readyz and /metrics show it. */
struct bus_shard_state {
    size_t index;         /* in SIGNAL_REDIS_URL's list */
    const char *label;    /* "host:port[/db]": never a password */
    const char *down;     /* NULL while the shard carries signals, else why not */
    size_t mismatched;    /* live nodes whose shard list differs from this node's */
    uint64_t peer_buffer; /* the largest subscriber output buffer it reported */
};
typedef void (*bus_shard_fn)(void *arg, const struct bus_shard_state *st);

struct bus;
struct bus_ops {
    /* Sends a packet to the other nodes' members (the relay has delivered
     * it to this node's). Returns -1 when it could not (counted). */
    int (*publish)(struct bus *b, const struct bus_msg *m);
    /* The room has its first local member: returns true when its presence
     * is known and members may join, else handler.ready follows. */
    bool (*room_open)(struct bus *b, const char *room);
    /* The room's last local member has gone. */
    void (*room_close)(struct bus *b, const char *room);
    /* Writes a local connection's presence, then handler.joined and, if
     * that returns true, handler.present. */
    void (*join)(struct bus *b, const char *room, const char *key, json_t *account,
                 const char *joined_at);
    void (*leave)(struct bus *b, const char *room, const char *key, const char *account_id);
    /* NULL when the bus carries signals to the other nodes, else why not:
     * the readiness answer. */
    const char *(*not_ready)(struct bus *b);
    /* Reads what the other nodes sent, now: the relay calls it between
     * client messages, since a saturated node has thousands of clients to
     * read before its loop would look at Redis again, and Redis cuts a
     * subscriber that falls too far behind. */
    void (*poll)(struct bus *b);
    /* Calls fn for each Redis shard, in order (none for the in-process
     * bus). */
    void (*each_shard)(struct bus *b, bus_shard_fn fn, void *arg);
    /* The node is stopping: say goodbye and close, without waiting. */
    void (*stop)(struct bus *b);
    void (*free)(struct bus *b);
};

struct bus {
    const struct bus_ops *ops;
    struct bus_handler h;
};

static inline int bus_publish(struct bus *b, const struct bus_msg *m)
{
    return b->ops->publish(b, m);
}
static inline bool bus_room_open(struct bus *b, const char *room)
{
    return b->ops->room_open(b, room);
}
static inline void bus_room_close(struct bus *b, const char *room)
{
    b->ops->room_close(b, room);
}
static inline void bus_join(struct bus *b, const char *room, const char *key, json_t *account,
                            const char *joined_at)
{
    b->ops->join(b, room, key, account, joined_at);
}
static inline void bus_leave(struct bus *b, const char *room, const char *key,
                             const char *account_id)
{
    b->ops->leave(b, room, key, account_id);
}
static inline const char *bus_not_ready(struct bus *b)
{
    return b->ops->not_ready(b);
}
static inline void bus_poll(struct bus *b)
{
    b->ops->poll(b);
}
static inline void bus_each_shard(struct bus *b, bus_shard_fn fn, void *arg)
{
    b->ops->each_shard(b, fn, arg);
}
static inline void bus_stop(struct bus *b)
{
    b->ops->stop(b);
}
static inline void bus_free(struct bus *b)
{
    b->ops->free(b);
}

struct bus *bus_local_new(const struct bus_handler *h);

/* The Redis bus of one shard: cfg->redis[shard]. */
struct bus *bus_redis_new(struct event_base *evb, const struct config *cfg, size_t shard,
                          const char *instance, struct stats *stats, const struct bus_handler *h);
/* Several shards (cfg->n_redis > 1): a Redis bus each, every room on the one
 * common/shard.c names. */
struct bus *bus_shard_new(struct event_base *evb, const struct config *cfg, const char *instance,
                          struct stats *stats, const struct bus_handler *h);

#endif
