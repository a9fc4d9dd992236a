/* Flow control of the Redis bus: how much of what this node publishes may be
 * on its way through Redis at once. A node subscribes to the channels it
 * publishes on, so each of its publications comes back to it; what has not
 * come back yet sits in Redis's output buffer for this node's subscriber (or
 * the sockets before it). Redis cuts a subscriber whose buffer passes 32 MiB,
 * or 8 MiB for a minute, losing everything in it, so:
 *
 *   - beyond UNECHOED_HIGH bytes out, publications wait here, in order, and
 *     go out as the earlier ones come back (no syscall, no pass over the
 *     clients: the node keeps reading and delivering locally);
 *   - that bounds this node's share of its own subscriber's buffer, not
 *     the others' share, nor its share of theirs: so while it publishes,
 *     the node also asks Redis every POLL_MS for the largest subscriber
 *     output buffer (CLIENT LIST TYPE pubsub), and publications wait while
 *     that is over PEER_HIGH, whoever's it is (without the permission, the
 *     node does without);
 *   - beyond HELD_PAUSE bytes waiting, the relay stops reading the clients
 *     that send (bus_handler.slow), and reads them again below half of it;
 *   - a subscriber that stalls without closing would hold everything back:
 *     after STALL_MS without anything coming back, what is out counts as
 *     lost and the rest goes.
 * See docs/cluster.md, "Backpressure". */
#include <stdlib.h>
#include <string.h>

#include "bus_redis.h"
#include "log.h"
#include "timer.h"
#include "xalloc.h"

#define UNECHOED_HIGH (2u << 20)
#define PEER_HIGH (4u << 20) /* half Redis's default soft limit */
#define POLL_MS 100
#define HELD_PAUSE (16u << 20)
#define HELD_MAX (64u << 20) /* then publications are dropped, as a last resort */
#define STALL_MS 3000

/* A publication waiting for its turn. */
struct held_pub {
    struct held_pub *next;
    char room[PROTOCOL_GUID_LEN + 1];
    size_t msg_len; /* what comes back */
    size_t cmd_len;
    char cmd[]; /* the PUBLISH in RESP form */
};

/* ------------------------------------------------------------------------
 * What is out
 * ------------------------------------------------------------------------ */

/* Hands a PUBLISH to the connection, and counts it out if it will come
 * back (only a subscribed channel brings it back). Returns -1 when the
 * connection refused it. */
static int send_publish(struct bus_redis *b, const char *room, const char *cmd, size_t cmd_len,
                        size_t msg_len)
{
    if (redis_formatted(b->publisher, NULL, NULL, cmd, cmd_len) < 0) {
        b->stats->dropped[DROP_REDIS_DOWN]++;
        return -1;
    }
    b->stats->bus_published++;
    struct channel *s = channel_find(b, room);
    if (s && s->state == CHANNEL_SUBSCRIBED) {
        s->unechoed += msg_len;
        b->unechoed_bytes += msg_len;
        b->stats->bus_unechoed_bytes += msg_len;
    }
    return 0;
}

/* Tells the relay when the held bytes cross a bound. */
static void check_pause(struct bus_redis *b)
{
    size_t held = b->held_bytes;
    bool slow = b->slow ? held > HELD_PAUSE / 2 : held > HELD_PAUSE;
    if (slow == b->slow || b->stopping)
        return;
    b->slow = slow;
    b->base.h.slow(b->base.h.arg, slow);
}

/* Whether a publication may go out now (each Redis bus on its own: one
 * that stalls holds back only its own rooms). */
static bool room_out(const struct bus_redis *b)
{
    return b->unechoed_bytes < UNECHOED_HIGH && b->peer_buffer < PEER_HIGH;
}

/* Takes the oldest waiting publication off the queue; returns it (the
 * caller frees it), or NULL when none waits. */
static struct held_pub *pop_held(struct bus_redis *b)
{
    struct held_pub *h = b->held;
    if (!h)
        return NULL;
    b->held = h->next;
    if (!b->held)
        b->held_tail = &b->held;
    b->held_bytes -= h->cmd_len;
    b->stats->bus_held_bytes -= h->cmd_len;
    return h;
}

/* What is out on s will not come back: it is no longer counted. */
static void write_off(struct channel *s)
{
    s->b->unechoed_bytes -= s->unechoed;
    s->b->stats->bus_unechoed_bytes -= s->unechoed;
    s->unechoed = 0;
}

/* Sends what waits, in order, while there is room out. */
static void release(struct bus_redis *b)
{
    while (b->held && room_out(b)) {
        struct held_pub *h = pop_held(b);
        send_publish(b, h->room, h->cmd, h->cmd_len, h->msg_len);
        free(h);
    }
    if (!b->held)
        evtimer_del(b->flow_timer);
    check_pause(b);
}

/* ------------------------------------------------------------------------
 * Interface
 * ------------------------------------------------------------------------ */

int flow_publish(struct bus_redis *b, const char *room, const char *cmd, size_t cmd_len,
                 size_t msg_len)
{
    b->published_since_poll = true;
    if (!b->held && room_out(b))
        return send_publish(b, room, cmd, cmd_len, msg_len);
    if (b->held_bytes + cmd_len > HELD_MAX) {
        b->stats->dropped[DROP_REDIS_BACKLOG]++;
        return -1;
    }
    struct held_pub *h = xmalloc(sizeof(*h) + cmd_len);
    h->next = NULL;
    snprintf(h->room, sizeof(h->room), "%s", room);
    h->msg_len = msg_len;
    h->cmd_len = cmd_len;
    memcpy(h->cmd, cmd, cmd_len);
    if (!b->held) {
        b->echoes_at_hold = b->echoes;
        timer_add_ms(b->flow_timer, STALL_MS);
    }
    *b->held_tail = h;
    b->held_tail = &h->next;
    b->held_bytes += cmd_len;
    b->stats->bus_held_bytes += cmd_len;
    check_pause(b);
    return 0;
}

void flow_echoed(struct channel *s, size_t len)
{
    struct bus_redis *b = s->b;
    b->echoes++;
    /* What was published before the count started may come back too. */
    if (len > s->unechoed)
        len = s->unechoed;
    s->unechoed -= len;
    b->unechoed_bytes -= len;
    b->stats->bus_unechoed_bytes -= len;
    if (b->held)
        release(b);
}

void flow_forget(struct channel *s)
{
    write_off(s);
    if (s->b->held)
        release(s->b);
}

void flow_publisher_down(struct bus_redis *b)
{
    struct held_pub *h;
    while ((h = pop_held(b)) != NULL) {
        b->stats->dropped[DROP_REDIS_DOWN]++;
        free(h);
    }
    evtimer_del(b->flow_timer);
    check_pause(b);
}

/* Nothing came back for STALL_MS while publications waited: what is out is
 * taken as lost, so that the rest may go. */
static void on_flow_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct bus_redis *b = arg;
    if (b->echoes == b->echoes_at_hold) {
        log_warn("bus_stalled",
                 "%zu bytes published did not come back from Redis%s in %d ms: sending the rest",
                 b->unechoed_bytes, b->tag, STALL_MS);
        struct channel *s, *tmp;
        HASH_ITER(hh, b->channels, s, tmp)
        write_off(s);
    }
    b->echoes_at_hold = b->echoes;
    release(b);
    if (b->held)
        timer_add_ms(b->flow_timer, STALL_MS);
}

/* ------------------------------------------------------------------------
 * The subscribers' buffers, as Redis reports them
 * ------------------------------------------------------------------------ */

/* The largest omem= of CLIENT LIST's lines. */
static size_t largest_omem(const char *list)
{
    size_t largest = 0;
    for (const char *p = list; (p = strstr(p, " omem=")) != NULL; p += 6) {
        size_t v = strtoull(p + 6, NULL, 10);
        if (v > largest)
            largest = v;
    }
    return largest;
}

static void on_client_list(redisAsyncContext *ac, void *reply_, void *privdata)
{
    (void)ac;
    struct bus_redis *b = privdata;
    redisReply *reply = reply_;
    b->poll_in_flight = false;
    if (!reply || b->stopping)
        return;
    if (reply->type == REDIS_REPLY_STRING) {
        b->peer_buffer = largest_omem(reply->str);
    } else {
        /* An ACL without CLIENT LIST: this node's own share is all it sees. */
        log_warn("bus_no_client_list",
                 "CLIENT LIST refused%s (%s): flow control sees only this "
                 "node's own publications",
                 b->tag, reply->type == REDIS_REPLY_ERROR ? reply->str : "?");
        b->no_client_list = true;
        b->peer_buffer = 0;
    }
    if (b->held)
        release(b);
}

/* Every POLL_MS: asks while this node publishes, or the last answer held it. */
static void on_poll(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct bus_redis *b = arg;
    bool wanted = b->published_since_poll || b->peer_buffer;
    if (b->no_client_list || b->poll_in_flight || !wanted)
        return;
    b->published_since_poll = false;
    if (redis_command(b->publisher, on_client_list, b, "CLIENT LIST TYPE pubsub") == 0)
        b->poll_in_flight = true;
}

void flow_init(struct bus_redis *b)
{
    b->held_tail = &b->held;
    b->flow_timer = evtimer_new(b->evb, on_flow_timer, b);
    b->poll_timer = event_new(b->evb, -1, EV_PERSIST, on_poll, b);
    timer_add_ms(b->poll_timer, POLL_MS);
}

void flow_stop(struct bus_redis *b)
{
    struct held_pub *h;
    while ((h = pop_held(b)) != NULL) {
        send_publish(b, h->room, h->cmd, h->cmd_len, h->msg_len);
        free(h);
    }
    evtimer_del(b->flow_timer);
    evtimer_del(b->poll_timer);
}

void flow_free(struct bus_redis *b)
{
    flow_publisher_down(b);
    event_free(b->flow_timer);
    event_free(b->poll_timer);
}
