/* The in-process bus of a single node: publishing is delivering, at once and
 * in order. Subscriptions need no bookkeeping here: the deliver callback
 * ignores rooms that have no local members. */
#include <stdlib.h>

#include "bus.h"

static int local_publish(struct bus *b, const struct bus_msg *msg)
{
    b->deliver(b->deliver_arg, msg);
    return 0;
}

static int local_subscribe(struct bus *b, const char *room)
{
    (void)b, (void)room;
    return 0;
}

static void local_unsubscribe(struct bus *b, const char *room)
{
    (void)b, (void)room;
}

static void local_free(struct bus *b)
{
    free(b);
}

static const struct bus_ops local_ops = {local_publish, local_subscribe, local_unsubscribe,
                                         local_free};

struct bus *bus_local_new(bus_deliver_fn deliver, void *arg)
{
    struct bus *b = calloc(1, sizeof(*b));
    if (!b)
        return NULL;
    b->ops = &local_ops;
    b->deliver = deliver;
    b->deliver_arg = arg;
    return b;
}
