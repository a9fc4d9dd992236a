/* The in-process bus of a single node: there is no other node to publish
 * to, and presence is this node's own. */
#include <stdlib.h>

#include "bus.h"
#include "xalloc.h"

static int local_publish(struct bus *b, const struct bus_msg *m)
{
    (void)b, (void)m;
    return 0;
}

static bool local_room_open(struct bus *b, const char *room)
{
    (void)b, (void)room;
    return true;
}

static void local_room_close(struct bus *b, const char *room)
{
    (void)b, (void)room;
}

static void local_join(struct bus *b, const char *room, const char *key, json_t *account,
                       const char *joined_at)
{
    if (b->h.joined(b->h.arg, room, key))
        b->h.present(b->h.arg, room, key, account, joined_at);
}

static void local_leave(struct bus *b, const char *room, const char *key, const char *account_id)
{
    b->h.absent(b->h.arg, room, key, account_id);
}

static const char *local_not_ready(struct bus *b)
{
    (void)b;
    return NULL; /* there are no other nodes to reach */
}

static void local_poll(struct bus *b)
{
    (void)b; /* everything is delivered at once */
}

static void local_each_shard(struct bus *b, bus_shard_fn fn, void *arg)
{
    (void)b, (void)fn, (void)arg; /* no Redis */
}

static void local_stop(struct bus *b)
{
    (void)b;
}

static void local_free(struct bus *b)
{
    free(b);
}

static const struct bus_ops local_ops = {
    local_publish,   local_room_open, local_room_close, local_join, local_leave,
    local_not_ready, local_poll,      local_each_shard, local_stop, local_free};

struct bus *bus_local_new(const struct bus_handler *h)
{
    struct bus *b = xcalloc(1, sizeof(*b));
    b->ops = &local_ops;
    b->h = *h;
    return b;
}
