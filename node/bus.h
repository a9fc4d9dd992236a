/* The bus carries every validated packet of a room to every node that has
 * members in it, this one included. Above the bus, the code is the same for
 * one node (in-process bus) and for a cluster (Redis bus). */
#ifndef SIGNAL_BUS_H
#define SIGNAL_BUS_H

#include <stdint.h>

#include "packet.h"

struct bus_msg {
    const char *room;
    const char *origin_node;
    uint64_t origin_conn; /* that connection does not get its own packet */
    const char *to;       /* account id, or NULL for every member */
    struct packet *packet;
};

typedef void (*bus_deliver_fn)(void *arg, const struct bus_msg *msg);

struct bus;
struct bus_ops {
    /* Delivers msg to every subscriber of msg->room in the cluster, in publish order. */
    int (*publish)(struct bus *b, const struct bus_msg *msg);
    /* While subscribed to a room, this node gets its messages through deliver. */
    int (*subscribe)(struct bus *b, const char *room);
    void (*unsubscribe)(struct bus *b, const char *room);
    void (*free)(struct bus *b);
};

struct bus {
    const struct bus_ops *ops;
    bus_deliver_fn deliver;
    void *deliver_arg;
};

static inline int bus_publish(struct bus *b, const struct bus_msg *msg)
{
    return b->ops->publish(b, msg);
}
static inline int bus_subscribe(struct bus *b, const char *room)
{
    return b->ops->subscribe(b, room);
}
static inline void bus_unsubscribe(struct bus *b, const char *room)
{
    b->ops->unsubscribe(b, room);
}
static inline void bus_free(struct bus *b)
{
    b->ops->free(b);
}

struct bus *bus_local_new(bus_deliver_fn deliver, void *arg);

#endif
