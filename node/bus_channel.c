/* Room channels in the Redis bus: one subscription per room with local
 * members, kept by a small state machine (at most one SUBSCRIBE or
 * UNSUBSCRIBE in flight per channel), what arrives on a channel, and the
 * presence load that follows each subscription. Until the load is in,
 * everything that arrives waits in a backlog, so that a peer's signal never
 * overtakes its user-joined. See docs/cluster.md, "Subscribing and loading a
 * room". */
#include <stdlib.h>
#include <string.h>

#include "bus_redis.h"
#include "clock.h"
#include "log.h"
#include "timer.h"
#include "xalloc.h"

#define OPEN_TIMEOUT_MS 3000
#define MAX_BACKLOG_BYTES (8u << 20) /* per room, while its presence loads */
struct channel *channel_find(struct bus_redis *b, const char *room)
{
    struct channel *s;
    HASH_FIND_STR(b->channels, room, s);
    return s;
}

static void backlog_clear(struct channel *s)
{
    while (s->backlog) {
        struct held_msg *e = s->backlog;
        s->backlog = e->next;
        free(e);
    }
    s->backlog_tail = &s->backlog;
    s->backlog_bytes = 0;
}

/* ------------------------------------------------------------------------
 * Channels
 * ------------------------------------------------------------------------ */

void channel_reset(struct channel *s)
{
    flow_forget(s);
    s->synced = false;
    s->unsure = false;
    s->loading = false;
    s->gen = ++s->b->next_gen;
    backlog_clear(s);
}

void channel_free(struct channel *s)
{
    HASH_DEL(s->b->channels, s);
    flow_forget(s);
    backlog_clear(s);
    presence_clear(s);
    event_free(s->open_timer);
    free(s->name);
    free(s);
}

void channel_open_now(struct channel *s)
{
    if (!s->opening)
        return;
    s->opening = false;
    evtimer_del(s->open_timer);
    s->b->base.h.ready(s->b->base.h.arg, s->room);
}

static void on_open_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct channel *s = arg;
    log_warn("room_open_timeout",
             "room %s: presence not loaded from Redis%s within %d ms; opening with what is known",
             s->room, s->b->tag, OPEN_TIMEOUT_MS);
    channel_open_now(s);
}

/* ---- the state machine ---- */

static void on_subscriber_reply(redisAsyncContext *ac, void *reply, void *privdata);

static void send_subscribe(struct channel *s)
{
    if (redis_command(s->b->subscriber, on_subscriber_reply, s->b, "SUBSCRIBE %s", s->name) == 0)
        s->state = CHANNEL_SUBSCRIBING;
}

static void send_unsubscribe(struct channel *s)
{
    if (redis_command(s->b->subscriber, NULL, NULL, "UNSUBSCRIBE %s", s->name) == 0)
        s->state = CHANNEL_UNSUBSCRIBING;
}

struct channel *channel_open(struct bus_redis *b, const char *room)
{
    struct channel *s = channel_find(b, room);
    if (!s) {
        s = xcalloc(1, sizeof(*s));
        s->b = b;
        snprintf(s->room, sizeof(s->room), "%s", room);
        s->name = wire_name(b->cfg->redis_prefix, "room:", room);
        s->gen = ++b->next_gen;
        s->backlog_tail = &s->backlog;
        s->open_timer = evtimer_new(b->evb, on_open_timeout, s);
        HASH_ADD_STR(b->channels, room, s);
    }
    s->want = true;
    if (s->state == CHANNEL_IDLE && redis_ready(b->subscriber))
        send_subscribe(s);
    /* Local members only, until Redis is back; but a node that has just
     * started waits for its first connection. */
    bool up = redis_ready(b->subscriber) && redis_ready(b->publisher);
    if (up || redis_connecting(b->subscriber) || redis_connecting(b->publisher)) {
        s->opening = true;
        timer_add_ms(s->open_timer, OPEN_TIMEOUT_MS);
    }
    return s;
}

void channel_close(struct channel *s)
{
    s->want = false;
    s->opening = false;
    evtimer_del(s->open_timer);
    channel_reset(s);
    presence_clear(s);
    if (s->state == CHANNEL_SUBSCRIBED)
        send_unsubscribe(s);
    /* Still SUBSCRIBED: the connection is gone, and the subscription with it. */
    if (s->state == CHANNEL_IDLE || s->state == CHANNEL_SUBSCRIBED)
        channel_free(s);
}

void channel_on_state(void *arg, bool up)
{
    struct bus_redis *b = arg;
    struct channel *s, *tmp;
    HASH_ITER(hh, b->channels, s, tmp)
    {
        if (up) {
            if (s->want && s->state == CHANNEL_IDLE)
                send_subscribe(s);
            continue;
        }
        s->state = CHANNEL_IDLE;
        channel_reset(s);
        if (!s->want)
            channel_free(s);
        else
            channel_open_now(s); /* local members need not wait for Redis */
    }
}

/* ---- what arrives on a channel ---- */

static void deliver_signal(struct bus_redis *b, struct channel *s, const struct wire_msg *w)
{
    char *to = w->to.len ? xstrndup(w->to.p, w->to.len) : NULL;
    struct packet *pk = packet_from_bytes(w->packet.p, w->packet.len);
    if (w->sent_us) {
        long long lag_us = clock_now_us() - w->sent_us;
        /* Clocks of different hosts disagree: a negative lag is skew. */
        histogram_observe(&b->stats->bus_lag, lag_us > 0 ? (double)lag_us / 1e6 : 0.0);
    }
    char origin[160];
    snprintf(origin, sizeof(origin), "%.*s", (int)w->origin.len, w->origin.p);
    struct bus_msg m = {s->room, origin, w->conn, to, pk};
    b->stats->bus_received++;
    b->base.h.deliver(b->base.h.arg, &m);
    packet_unref(pk);
    free(to);
}

static void handle(struct bus_redis *b, struct channel *s, const struct wire_msg *w)
{
    if (w->kind == WIRE_SIGNAL)
        deliver_signal(b, s, w);
    else
        presence_event(b, s, w);
}

/* Until the room's presence is loaded, everything that arrives waits. */
static void hold(struct bus_redis *b, struct channel *s, enum wire_kind kind, const char *text,
                 size_t len)
{
    if (s->backlog_bytes + len > MAX_BACKLOG_BYTES) {
        if (kind == WIRE_SIGNAL)
            b->stats->dropped[DROP_LOAD_BACKLOG]++;
        s->unsure = true; /* a lost presence event: load again later */
        return;
    }
    struct held_msg *e = xmalloc(sizeof(*e) + len);
    e->next = NULL;
    e->len = len;
    memcpy(e->text, text, len);
    *s->backlog_tail = e;
    s->backlog_tail = &e->next;
    s->backlog_bytes += len;
}

static void on_message(struct bus_redis *b, const redisReply *channel, const redisReply *msg)
{
    size_t plen = strlen(b->cfg->redis_prefix) + strlen("room:");
    struct wire_msg w;
    bool mine;
    if (channel->len <= plen || msg->type != REDIS_REPLY_STRING)
        return;
    const char *room = channel->str + plen;
    if (!trust_accept(b, channel->str, channel->len, room, msg->str, msg->len, &w, &mine))
        return;
    struct channel *s = channel_find(b, room);
    /* Our own: delivered or applied when it happened. */
    if (s && mine)
        flow_echoed(s, msg->len);
    if (!s || s->state != CHANNEL_SUBSCRIBED || !s->want || mine)
        return;
    if (!s->synced && s->loading)
        hold(b, s, w.kind, msg->str, msg->len);
    else if (s->synced || w.kind == WIRE_SIGNAL)
        handle(b, s, &w); /* unsynced: no load possible now, late is worse */
    /* else a presence event before the load is sent: the load will hold it */
}

/* ---- loading a room's presence ---- */

struct load_req {
    struct bus_redis *b;
    char room[PROTOCOL_GUID_LEN + 1];
    uint64_t gen;
};

static void replay_backlog(struct bus_redis *b, struct channel *s)
{
    struct held_msg *e = s->backlog;
    s->backlog = NULL;
    s->backlog_tail = &s->backlog;
    s->backlog_bytes = 0;
    while (e) {
        struct held_msg *next = e->next;
        struct wire_msg w; /* it was accepted when it arrived; its copy decodes again */
        if (wire_decode(e->text, e->len, &w))
            handle(b, s, &w);
        free(e);
        e = next;
    }
}

static void on_load(redisAsyncContext *ac, void *reply_, void *privdata)
{
    (void)ac;
    struct load_req *req = privdata;
    struct bus_redis *b = req->b;
    struct channel *s = channel_find(b, req->room);
    redisReply *reply = reply_;
    bool current = s && s->gen == req->gen;
    free(req);
    if (!current)
        return;
    s->loading = false;
    if (!reply || s->state != CHANNEL_SUBSCRIBED)
        return; /* tried again once both connections are up */
    s->synced = true;
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 3 ||
        reply->element[0]->type != REDIS_REPLY_INTEGER ||
        reply->element[1]->type != REDIS_REPLY_ARRAY ||
        reply->element[2]->type != REDIS_REPLY_ARRAY) {
        /* Follow the events from here on, and load again at the next beat. */
        presence_script_failed(b, "loading a room",
                               reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply",
                               false);
        s->presence_ver = 0;
        s->unsure = true;
    } else {
        /* hold() may have lost an event meanwhile */
        s->unsure = presence_reconcile(b, s, reply->element[1], reply->element[2]) || s->unsure;
        s->presence_ver = reply->element[0]->integer;
    }
    replay_backlog(b, s);
    channel_open_now(s);
}

void channel_start_load(struct channel *s)
{
    struct bus_redis *b = s->b;
    if (s->loading || s->synced || s->state != CHANNEL_SUBSCRIBED || !redis_ready(b->publisher))
        return;
    struct load_req *req = xcalloc(1, sizeof(*req));
    req->b = b;
    snprintf(req->room, sizeof(req->room), "%s", s->room);
    req->gen = s->gen;
    char *presence = wire_name(b->cfg->redis_prefix, "presence:", s->room);
    const char *argv[] = {presence, b->k_seq, b->k_nodes, NULL};
    int rc = script_run(b, SCRIPT_LOAD, on_load, req, 3, argv);
    free(presence);
    if (rc < 0)
        free(req);
    else
        s->loading = true;
}

static void on_subscriber_reply(redisAsyncContext *ac, void *reply_, void *privdata)
{
    (void)ac;
    struct bus_redis *b = privdata;
    redisReply *reply = reply_;
    if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements != 3 ||
        reply->element[0]->type != REDIS_REPLY_STRING ||
        reply->element[1]->type != REDIS_REPLY_STRING)
        return;
    const char *kind = reply->element[0]->str;
    if (!strcmp(kind, "message")) {
        on_message(b, reply->element[1], reply->element[2]);
        return;
    }
    size_t plen = strlen(b->cfg->redis_prefix) + strlen("room:");
    struct channel *s =
        reply->element[1]->len > plen ? channel_find(b, reply->element[1]->str + plen) : NULL;
    if (!s)
        return;
    if (!strcmp(kind, "subscribe")) {
        s->state = CHANNEL_SUBSCRIBED;
        if (s->want)
            channel_start_load(s);
        else
            send_unsubscribe(s);
    } else if (!strcmp(kind, "unsubscribe")) {
        s->state = CHANNEL_IDLE;
        if (s->want)
            send_subscribe(s);
        else
            channel_free(s);
    }
}
