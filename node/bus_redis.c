/* The Redis bus: rooms that span nodes. This file owns the bus operations,
 * the two connections (one publishes and runs the scripts, one subscribes)
 * and the bus's start and stop; bus_redis.h lists the other parts. A node
 * publishes each signal once to its room's channel, subscribes to a room's
 * channel while it has local members there, and writes its members'
 * presence with Lua scripts; the design is in docs/cluster.md. */
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "bus_redis.h"
#include "clock.h"
#include "xalloc.h"

/* Beyond this much unsent to Redis, signals are dropped rather than queued
 * without bound behind a Redis that cannot keep up. */
#define MAX_UNSENT_BYTES (64u << 20)

/* ---- the publishing connection ---- */

static void on_publisher_state(void *arg, bool up)
{
    struct bus_redis *b = arg;
    struct channel *s, *tmp;
    if (!up) {
        b->publisher_up_since = 0;
        flow_publisher_down(b);
        HASH_ITER(hh, b->channels, s, tmp)
        channel_open_now(s);
        return;
    }
    b->publisher_up_since = clock_mono_ms();
    script_load_all(b);
    presence_restore(b);
    HASH_ITER(hh, b->channels, s, tmp)
    channel_start_load(s);
}

/* ---- the bus operations ---- */

/* To the other nodes: the packet, serialized once, behind the signal's
 * head, in a PUBLISH written around it in RESP form. */
static int rb_publish(struct bus *bus, const struct bus_msg *m)
{
    struct bus_redis *b = (struct bus_redis *)bus;
    if (!redis_ready(b->publisher)) {
        b->stats->dropped[DROP_REDIS_DOWN]++;
        return -1;
    }
    if (redis_unsent_bytes(b->publisher) > MAX_UNSENT_BYTES) {
        b->stats->dropped[DROP_REDIS_BACKLOG]++;
        return -1;
    }
    char head[512], auth[BUS_AUTH_HEAD_MAX];
    size_t hl =
        wire_signal_head(head, sizeof(head), m->origin, m->origin_conn, clock_now_us(), m->to);
    if (!hl) /* cannot happen: ids are bounded well below the head's size */
        return -1;
    char *channel = wire_name(b->cfg->redis_prefix, "room:", m->room);
    /* Signed once, whoever receives it. */
    const struct wire_str parts[] = {{head, hl},
                                     {(const char *)packet_text(m->packet), m->packet->len}};
    size_t al = trust_sign(b, auth, sizeof(auth), channel, WIRE_SIGNAL, parts, 2);
    size_t msg_len = al + hl + m->packet->len;
    struct buf cmd;
    buf_init(&cmd, 64 + strlen(channel) + msg_len);
    buf_appendf(&cmd, "*3\r\n$7\r\nPUBLISH\r\n$%zu\r\n%s\r\n$%zu\r\n", strlen(channel), channel,
                msg_len);
    buf_append(&cmd, auth, al);
    buf_append(&cmd, head, hl);
    buf_append(&cmd, packet_text(m->packet), m->packet->len);
    buf_append(&cmd, "\r\n", 2);
    int rc = flow_publish(b, m->room, cmd.data, cmd.len, msg_len);
    buf_free(&cmd);
    free(channel);
    return rc;
}

static bool rb_room_open(struct bus *bus, const char *room)
{
    return !channel_open((struct bus_redis *)bus, room)->opening;
}

static void rb_room_close(struct bus *bus, const char *room)
{
    struct channel *s = channel_find((struct bus_redis *)bus, room);
    if (s)
        channel_close(s);
}

static void rb_join(struct bus *bus, const char *room, const char *key, json_t *account,
                    const char *joined_at)
{
    struct bus_redis *b = (struct bus_redis *)bus;
    struct channel *s = channel_find(b, room);
    if (s)
        presence_join(b, s, key, account, joined_at);
    else if (b->base.h.joined(b->base.h.arg, room, key)) /* never: a join follows its open */
        b->base.h.present(b->base.h.arg, room, key, account, joined_at);
}

static void rb_leave(struct bus *bus, const char *room, const char *key, const char *account_id)
{
    presence_leave((struct bus_redis *)bus, room, key, account_id);
}

static const char *rb_not_ready(struct bus *bus)
{
    struct bus_redis *b = (struct bus_redis *)bus;
    if (!redis_ready(b->publisher))
        return "redis bus connection down";
    if (!redis_ready(b->subscriber))
        return "redis subscriber connection down";
    return NULL;
}

static void rb_poll(struct bus *bus)
{
    redis_read_now(((struct bus_redis *)bus)->subscriber);
}

static void rb_each_shard(struct bus *bus, bus_shard_fn fn, void *arg)
{
    struct bus_redis *b = (struct bus_redis *)bus;
    const struct bus_shard_state st = {b->index, b->url->label, rb_not_ready(bus), b->mismatched,
                                       b->peer_buffer};
    fn(arg, &st);
}

static void rb_stop(struct bus *bus)
{
    struct bus_redis *b = (struct bus_redis *)bus;
    b->stopping = true;
    flow_stop(b);
    beat_goodbye(b);
    redis_close(b->publisher);
    redis_close(b->subscriber);
}

static void rb_free(struct bus *bus)
{
    struct bus_redis *b = (struct bus_redis *)bus;
    b->stopping = true; /* the relay hears no more from the bus */
    flow_free(b);
    redis_free(b->publisher); /* callbacks still due run now, with no reply */
    redis_free(b->subscriber);
    struct channel *s, *tmp;
    HASH_ITER(hh, b->channels, s, tmp)
    channel_free(s);
    while (b->pending) {
        struct retract *t = b->pending;
        b->pending = t->next;
        retract_free(t);
    }
    event_free(b->beat);
    trust_free(b);
    free(b->instance);
    free(b->k_nodes);
    free(b->k_seq);
    free(b->k_heartbeat);
    free(b->k_rooms);
    free(b->k_suspects);
    free(b->k_lists);
    free(b->shard_list);
    free(b->tag);
    free(b);
}

static const struct bus_ops redis_ops = {rb_publish, rb_room_open, rb_room_close, rb_join,
                                         rb_leave,   rb_not_ready, rb_poll,       rb_each_shard,
                                         rb_stop,    rb_free};

/* "<index>/<count> <label>,<label>...": the list as this node sees it, from
 * this shard; the labels hold no password. */
static char *shard_list(const struct config *cfg, size_t index)
{
    struct buf t;
    buf_init(&t, 64);
    buf_appendf(&t, "%zu/%zu ", index, cfg->n_redis);
    for (size_t i = 0; i < cfg->n_redis; i++)
        buf_appendf(&t, "%s%s", i ? "," : "", cfg->redis[i].label);
    char *s = xstrndup(t.data, t.len);
    buf_free(&t);
    return s;
}

struct bus *bus_redis_new(struct event_base *evb, const struct config *cfg, size_t shard,
                          const char *instance, struct stats *stats, const struct bus_handler *h)
{
    struct bus_redis *b = xcalloc(1, sizeof(*b));
    const char *prefix = cfg->redis_prefix;
    b->base.ops = &redis_ops;
    b->base.h = *h;
    b->evb = evb;
    b->cfg = cfg;
    b->index = shard;
    b->url = &cfg->redis[shard];
    if (cfg->n_redis > 1) {
        struct buf t;
        buf_init(&t, 64);
        buf_appendf(&t, " on shard %zu (%s)", shard, b->url->label);
        b->tag = xstrndup(t.data, t.len);
        buf_free(&t);
    } else {
        b->tag = xstrdup("");
    }
    b->shard_list = shard_list(cfg, shard);
    b->instance = xstrdup(instance);
    b->boot = strrchr(b->instance, ':') + 1;
    b->k_nodes = wire_name(prefix, "nodes", "");
    b->k_seq = wire_name(prefix, "seq", "");
    b->k_heartbeat = wire_name(prefix, "node:", cfg->node_id);
    b->k_rooms = wire_name(prefix, "rooms:", instance);
    b->k_suspects = wire_name(prefix, "suspects", "");
    b->k_lists = wire_name(prefix, "shard-lists", "");
    b->stats = stats;
    trust_init(b);
    flow_init(b);
    beat_start(b);
    b->publisher = redis_new(evb, b->url, "bus", on_publisher_state, b);
    b->subscriber = redis_new(evb, b->url, "subscriber", channel_on_state, b);
    if (cfg->n_redis > 1) { /* one shard: the metrics of a single Redis, as ever */
        redis_set_shard(b->publisher, (int)shard);
        redis_set_shard(b->subscriber, (int)shard);
    }
    return &b->base;
}
