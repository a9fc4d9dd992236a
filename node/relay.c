/* Joining, relaying and leaving; see relay.h. */
#include "relay.h"

#include <stdlib.h>
#include <string.h>
#include <utlist.h>

#include "bus.h"
#include "conn.h"
#include "clock.h"
#include "log.h"
#include "membership.h"
#include "node.h"
#include "room.h"
#include "utf8.h"
#include "xalloc.h"

#define MAX_LIMITED_IN_A_ROW 1000 /* then the sender is closed with 1008 */
/* Client messages between two looks at the other nodes' (bus_poll): one
 * ioctl per this many keeps a saturated node's subscriber buffer in Redis
 * small. */
#define POLL_EVERY 32

static const char forbidden[] = "Forbidden: Not a member of this chat room";

/* m to room r's local members: all of them, or the account m is for, but
 * never the connection that sent it. */
static void deliver(struct node *n, struct room *r, const struct bus_msg *m)
{
    bool from_here = strcmp(m->origin, n->instance) == 0;
    for (struct conn *c = r->members; c; c = c->room_next) {
        if (from_here && c->id == m->origin_conn)
            continue;
        if (m->to && strcmp(c->ident.account_id, m->to) != 0)
            continue;
        conn_send(c, m->packet);
    }
}

/* p to the room's local members and, through the bus, to the other nodes'.
 * While the bus is slow, the sender is read no more until it catches up. */
static void publish(struct conn *origin, struct room *r, const char *to, struct packet *p)
{
    struct node *n = origin->node;
    struct bus_msg m = {r->id, n->instance, origin->id, to, p};
    deliver(n, r, &m);
    if (bus_publish(n->bus, &m) < 0)
        log_debug("publish_skipped", "room %s: not published to the other nodes", r->id);
    packet_unref(p);
    if (n->bus_slow && !origin->held) {
        origin->held = true;
        conn_pause_input(origin, true);
        DL_APPEND2(n->held, origin, held_prev, held_next);
    }
}

/* Backpressure from the bus: pausing each sender as it sends (publish)
 * stops the traffic at its source without a pass over every connection. */
void relay_slow(void *node, bool slow)
{
    struct node *n = node;
    n->bus_slow = slow;
    if (slow) {
        n->stats.bus_slowdowns++;
        return;
    }
    /* Detached first: a connection read again may be held again at once. */
    struct conn *c = n->held;
    n->held = NULL;
    while (c) {
        struct conn *next = c->held_next;
        c->held = false;
        c->held_prev = c->held_next = NULL;
        conn_pause_input(c, false);
        c = next;
    }
}

/* user-joined / user-left, to every local member of another account. */
static void announce(struct room *r, const char *type, json_t *account)
{
    const char *id = json_string_value(json_object_get(account, "id"));
    json_t *data = json_object();
    json_t *j = protocol_signal(type, data, NULL, id, account);
    json_decref(data);
    struct packet *p = packet_from_json(j);
    json_decref(j);
    if (!p)
        return;
    for (struct conn *c = r->members; c; c = c->room_next)
        if (strcmp(c->ident.account_id, id) != 0)
            conn_send(c, p);
    packet_unref(p);
}

static void release_if_empty(struct node *n, struct room *r)
{
    if (r->n_members || r->waiting)
        return;
    bus_room_close(n->bus, r->id);
    room_release(&n->rooms, r);
}

/* The bus writes the connection's presence first, so that anyone who joins
 * on another node after this welcome sees this member in theirs; meanwhile
 * the connection waits, its input paused. */
static void enter(struct conn *c, struct room *r)
{
    protocol_timestamp(clock_now_ms(), c->joined_at);
    c->place = PLACE_ENTERING;
    bus_join(c->node->bus, r->id, c->key, c->ident.account, c->joined_at);
}

bool relay_joined(void *node, const char *room, const char *key)
{
    struct node *n = node;
    struct room *r = room_find(n->rooms, room);
    struct conn *c = r ? r->waiting : NULL;
    while (c && !(c->place == PLACE_ENTERING && !strcmp(c->key, key)))
        c = c->room_next;
    if (!c)
        return false; /* it left meanwhile, and retracted its presence */
    c->place = PLACE_WAITING;
    /* Input is paused while a connection waits for its welcome, so lws has
     * not seen a client that went away meanwhile; it would be announced to
     * the room only to leave at once. */
    if (c->state != CONN_CLOSING && conn_peer_gone(c))
        conn_close(c, 1001, "Going away");
    if (c->state != CONN_CLOSING) {
        json_t *participants = roster_participants(r, c->ident.account_id);
        conn_send_json(c, protocol_welcome(c->ident.account_id, r->id, c->joined_at, participants));
        json_decref(participants);
    }
    if (c->state == CONN_CLOSING) {
        /* Closing, or the welcome could not be queued (out of memory): it
         * waits for relay_leave, having taken back what the bus wrote. */
        bus_leave(n->bus, r->id, c->key, c->ident.account_id);
        conn_pause_input(c, false); /* so that lws sees the close */
        return false;
    }
    room_remove_waiting(r, c);
    room_add_member(r, c);
    c->place = PLACE_MEMBER;
    c->state = CONN_JOINED;
    conn_pause_input(c, false);
    if (log_enabled(LOG_DEBUG)) {
        struct log_fields f = conn_log_fields(c);
        log_event(LOG_DEBUG, "conn_join", &f, "joined the room");
    }
    return true;
}

static void join(struct conn *c)
{
    struct node *n = c->node;
    struct room *r = room_find(n->rooms, c->room_id);
    if (!r) {
        r = room_open(&n->rooms, c->room_id);
        r->ready = bus_room_open(n->bus, r->id);
    }
    /* Nothing is read from the client until its welcome is out. */
    conn_pause_input(c, true);
    room_add_waiting(r, c);
    c->room = r;
    c->place = PLACE_WAITING;
    if (r->ready)
        enter(c, r);
}

void relay_room_ready(void *node, const char *room)
{
    struct node *n = node;
    struct room *r = room_find(n->rooms, room);
    if (!r || r->ready)
        return;
    r->ready = true;
    struct conn *next;
    for (struct conn *c = r->waiting; c; c = next) {
        next = c->room_next; /* enter may take c off the list */
        if (c->place == PLACE_WAITING && c->state != CONN_CLOSING)
            enter(c, r);
    }
}

void relay_present(void *node, const char *room, const char *key, json_t *account,
                   const char *joined_at)
{
    struct node *n = node;
    struct room *r = room_find(n->rooms, room);
    if (r && roster_add(r, key, account, joined_at) == ROSTER_FIRST)
        announce(r, "user-joined", account);
}

void relay_absent(void *node, const char *room, const char *key, const char *account_id)
{
    struct node *n = node;
    struct room *r = room_find(n->rooms, room);
    json_t *account = r ? roster_remove(r, key, account_id) : NULL;
    if (account) {
        announce(r, "user-left", account);
        json_decref(account);
    }
}

static void on_membership(void *arg, enum membership_answer a)
{
    struct conn *c = arg;
    c->check = NULL;
    if (c->state != CONN_PENDING)
        return;
    if (a == MEMBERSHIP_YES) {
        conn_pause_input(c, false);
        join(c);
    } else if (a == MEMBERSHIP_NO) {
        conn_close(c, 4403, forbidden);
    } else {
        conn_close(c, 1013, "Try again later");
    }
}

int relay_admit(struct conn *c)
{
    struct membership *m = c->node->membership;
    enum membership_answer a = m->ops->ask(m, &c->ident, c->room_id, on_membership, c, &c->check);
    /* The rooms claim has answered (membership token asks at once): a
     * token can list many rooms, and a connection lives long. */
    json_decref(c->ident.rooms);
    c->ident.rooms = NULL;
    if (a == MEMBERSHIP_PENDING) {
        /* Nothing is read from a client before it is a member. */
        conn_pause_input(c, true);
        return 0;
    }
    on_membership(c, a);
    return 0;
}

void relay_leave(struct conn *c)
{
    struct node *n = c->node;
    if (c->check) {
        n->membership->ops->cancel(c->check);
        c->check = NULL;
    }
    if (c->held) {
        DL_DELETE2(n->held, c, held_prev, held_next);
        c->held = false;
    }
    struct room *r = c->room;
    if (!r)
        return;
    c->room = NULL;
    if (c->place == PLACE_MEMBER)
        room_remove_member(r, c);
    else
        room_remove_waiting(r, c);
    /* A waiting connection has written nothing yet; an entering one has its
     * join on the way. */
    if (c->place != PLACE_WAITING)
        bus_leave(n->bus, r->id, c->key, c->ident.account_id);
    c->place = PLACE_OUTSIDE;
    release_if_empty(n, r);
}

static bool rate_ok(struct conn *c, size_t len)
{
    const struct config *cfg = &c->node->cfg;
    int64_t now = clock_mono_ms();
    bool bytes_ok = !cfg->rate_bytes_per_s ||
                    bucket_take(&c->byte_bucket, (double)len, (double)cfg->rate_bytes_per_s,
                                conn_byte_burst(cfg), now);
    if (bytes_ok &&
        bucket_take(&c->bucket, 1, (double)cfg->rate_per_s, (double)cfg->rate_burst, now)) {
        c->limited_in_a_row = 0;
        return true;
    }
    if (++c->limited_in_a_row > MAX_LIMITED_IN_A_ROW) {
        struct log_fields f = conn_log_fields(c);
        log_event(LOG_INFO, "conn_flood", &f, "closed for sustained flooding");
        conn_close(c, 1008, "Rate limit exceeded");
    } else {
        conn_send_error(c, "rate_limited", "Too many messages: slow down");
    }
    return false;
}

/* Whether to (NULL: everyone) names an account in c's room, anywhere in
 * the cluster; if not, c gets unknown_target. */
static bool target_known(struct conn *c, const char *to)
{
    if (!to || roster_has(c->room, to))
        return true;
    conn_send_error(c, "unknown_target", "The 'to' account is not in this room");
    return false;
}

/* A ping (docs/protocol.md, "Keepalive"): the pong goes to the sender
 * alone, never to the room or the bus. */
static void pong(struct conn *c)
{
    struct packet *p = packet_from_bytes(PROTOCOL_PONG, sizeof(PROTOCOL_PONG) - 1);
    conn_send(c, p);
    packet_unref(p);
}

/* The slow path: a client signal read into a tree by jansson, for the
 * forms protocol_scan leaves to it. */
static void relay_parsed(struct conn *c, const char *text, size_t len)
{
    struct signal_in s;
    const char *why;
    enum protocol_error e = protocol_parse(text, len, &s, &why);
    if (e != PROTOCOL_OK) {
        conn_send_error(c, protocol_error_code(e), why);
        return;
    }
    if (s.kind == PROTOCOL_PING)
        pong(c);
    else if (target_known(c, s.to)) {
        json_t *j = protocol_signal(s.type, s.data, s.to, c->ident.account_id, c->ident.account);
        struct packet *p = packet_from_json(j);
        json_decref(j);
        if (p)
            publish(c, c->room, s.to, p);
    }
    signal_in_clear(&s);
}

/* The fast path: the client's text checked in one pass and its own bytes
 * spliced into the packet, with no tree either way. Returns false, having
 * done nothing, for the texts it leaves to relay_parsed. */
static bool relay_scanned(struct conn *c, const char *text, size_t len)
{
    struct json_scan scan;
    struct signal_spans s;
    const char *why;
    enum protocol_error e = protocol_scan(text, len, &scan, &s, &why);
    if (e == PROTOCOL_NEEDS_TREE)
        return false;
    /* Valid JSON is valid UTF-8, so only a text that is not JSON needs the
     * second look: a text message that is not UTF-8 fails the connection
     * (RFC 6455 §8.1). */
    if (e == PROTOCOL_INVALID_JSON && !utf8_valid(text, len)) {
        conn_close(c, 1007, "Text is not valid UTF-8");
        return true;
    }
    if (e != PROTOCOL_OK) {
        conn_send_error(c, protocol_error_code(e), why);
        return true;
    }
    if (s.kind == PROTOCOL_PING) {
        pong(c);
        return true;
    }
    if (!c->sender &&
        !(c->sender = protocol_sender(c->ident.account_id, c->ident.account, &c->sender_len)))
        return false;
    char small[128], *to = NULL;
    if (s.to.p) {
        to = s.to.len < sizeof(small) ? small : xmalloc(s.to.len + 1);
        memcpy(to, s.to.p, s.to.len);
        to[s.to.len] = '\0';
    }
    if (target_known(c, to)) {
        struct buf b;
        buf_init(&b, PACKET_HEADROOM + len + c->sender_len + 80);
        buf_extend(&b, PACKET_HEADROOM);
        protocol_splice(&b, &s, c->sender, c->sender_len);
        publish(c, c->room, to, packet_adopt((unsigned char *)b.data, b.len - PACKET_HEADROOM));
    }
    if (to != small)
        free(to);
    return true;
}

void relay_message(struct conn *c, const char *text, size_t len, bool binary)
{
    c->node->stats.messages_in++;
    c->node->stats.bytes_in += len;
    if (!rate_ok(c, len))
        return;
    if (binary) {
        conn_send_error(c, "invalid_message", "Binary frames are not supported");
        return;
    }
    if (!relay_scanned(c, text, len))
        relay_parsed(c, text, len);
    if (++c->node->messages_since_poll == POLL_EVERY) {
        c->node->messages_since_poll = 0;
        bus_poll(c->node->bus);
    }
}

void relay_deliver(void *node, const struct bus_msg *m)
{
    struct node *n = node;
    struct room *r = room_find(n->rooms, m->room);
    if (r)
        deliver(n, r, m);
}
