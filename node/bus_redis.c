/* The Redis bus: rooms that span nodes. It owns the room channels (SUBSCRIBE
 * while the room has local members), cluster-wide presence (written by the
 * Lua scripts of bus_lua.h, mirrored in each room's roster), the heartbeat,
 * the sweep of dead nodes, and the way back after Redis comes back. One
 * connection publishes (and runs the scripts), one subscribes. */
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uthash.h>

#include "bus.h"
#include "bus_lua.h"
#include "conn.h"
#include "log.h"
#include "node.h"
#include "redis.h"
#include "room.h"
#include "xalloc.h"

#define OPEN_TIMEOUT_MS 3000
#define MAX_BACKLOG_BYTES (8u << 20) /* per room, while its presence loads */
/* Beyond this much unsent to Redis, signals are dropped rather than queued
 * without bound behind a Redis that cannot keep up. */
#define MAX_UNSENT_BYTES (64u << 20)

enum sub_state { SUB_IDLE, SUB_SUBSCRIBING, SUB_SUBSCRIBED, SUB_UNSUBSCRIBING };

struct event_copy { /* a presence event that arrived before the room's load */
    struct event_copy *next;
    size_t len;
    char text[];
};

/* One room's channel. It outlives the room while a (un)subscription is in
 * flight, so that there is never more than one per channel. */
struct sub {
    char room[PROTOCOL_GUID_LEN + 1];
    char *channel;
    enum sub_state state;
    bool want;    /* the room has local members */
    bool synced;  /* the roster matches Redis as of ver, then follows events */
    bool loading; /* a load is on its way */
    bool opening; /* handler.ready is owed */
    uint64_t gen; /* bumped whenever a load in flight becomes stale */
    long long ver;
    bool unsure; /* kept entries Redis did not confirm: load again */
    struct event_copy *backlog, **backlog_tail;
    size_t backlog_bytes;
    struct event *open_timer;
    struct bus_redis *b;
    UT_hash_handle hh;
};

struct retract { /* a leave that Redis has not confirmed yet */
    struct bus_redis *b;
    char *room, *key, *account_id;
    struct retract *next;
};

struct load_req {
    struct bus_redis *b;
    char room[PROTOCOL_GUID_LEN + 1];
    uint64_t gen;
};

struct bus_redis {
    struct bus base;
    struct event_base *evb;
    const struct config *cfg;
    char *instance, *boot;
    char *k_nodes, *k_seq, *k_heartbeat, *k_rooms, *k_suspects;
    struct room **rooms;
    struct stats *stats;
    struct redis *pub, *sub;
    struct sub *subs;
    struct retract *pending;   /* leaves to write again */
    struct retract *restoring; /* leaves in the restore under way */
    bool restore_busy, restore_needed, script_failing;
    struct event *beat;
    int64_t pub_up_since; /* monotonic ms; 0 while down */
    uint64_t next_gen;    /* one sequence for every sub, so a load outlives no sub */
    int64_t sweep_sent;   /* monotonic ms; 0 when no sweep's answer is due */
    long period_ms;       /* of the heartbeat and the sweep: a quarter of the TTL */
    long stuck_ms;        /* no answer to a sweep for this long: reconnect */
    bool stopping;
};

static char *key_of(const struct bus_redis *b, const char *kind, const char *name)
{
    size_t n = strlen(b->cfg->redis_prefix) + strlen(kind) + strlen(name) + 1;
    char *k = xrealloc(NULL, n);
    snprintf(k, n, "%s%s%s", b->cfg->redis_prefix, kind, name);
    return k;
}

static bool is_mine(const struct bus_redis *b, const char *key)
{
    size_t n = strlen(b->instance);
    return !strncmp(key, b->instance, n) && key[n] == ':';
}

/* ---- subscriptions ---- */

static struct sub *sub_find(struct bus_redis *b, const char *room)
{
    struct sub *s;
    HASH_FIND_STR(b->subs, room, s);
    return s;
}

static void backlog_clear(struct sub *s)
{
    while (s->backlog) {
        struct event_copy *e = s->backlog;
        s->backlog = e->next;
        free(e);
    }
    s->backlog_tail = &s->backlog;
    s->backlog_bytes = 0;
}

static void sub_reset(struct sub *s)
{
    s->synced = false;
    s->unsure = false;
    s->loading = false;
    s->gen = ++s->b->next_gen;
    backlog_clear(s);
}

static void sub_free(struct sub *s)
{
    HASH_DEL(s->b->subs, s);
    backlog_clear(s);
    event_free(s->open_timer);
    free(s->channel);
    free(s);
}

static void open_now(struct sub *s)
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
    struct sub *s = arg;
    log_warn("room_open_timeout",
             "room %s: presence not loaded from Redis within %d ms; opening with what is known",
             s->room, OPEN_TIMEOUT_MS);
    open_now(s);
}

static void on_sub_reply(redisAsyncContext *ac, void *reply, void *privdata);

static void send_subscribe(struct sub *s)
{
    if (redis_command(s->b->sub, on_sub_reply, s->b, "SUBSCRIBE %s", s->channel) == 0)
        s->state = SUB_SUBSCRIBING;
}

static void send_unsubscribe(struct sub *s)
{
    if (redis_command(s->b->sub, NULL, NULL, "UNSUBSCRIBE %s", s->channel) == 0)
        s->state = SUB_UNSUBSCRIBING;
}

/* ---- presence ---- */

/* A script Redis refused (out of memory, an ACL): said once until one
 * works again. Presence is written again at the next heartbeat when rewrite
 * is set; a room whose load failed is loaded again there anyway. */
static void script_failed(struct bus_redis *b, const char *what, const char *why, bool rewrite)
{
    if (!b->script_failing)
        log_error("redis_script_failed", "redis bus: %s failed: %s; retrying at each heartbeat",
                  what, why);
    b->script_failing = true;
    b->restore_needed = b->restore_needed || rewrite;
}

static void on_join_reply(redisAsyncContext *ac, void *reply_, void *privdata)
{
    (void)ac;
    redisReply *reply = reply_;
    if (reply && reply->type == REDIS_REPLY_ERROR)
        script_failed(privdata, "join", reply->str, true);
}

/* Returns -1 when the command could not be sent: fn will not run. */
static int send_join(struct bus_redis *b, const char *room, const char *key, json_t *account,
                     const char *joined_at, redisCallbackFn *fn, void *privdata)
{
    json_t *v = json_pack("{sOss}", "account", account, "joinedAt", joined_at);
    char *value = v ? json_dumps(v, JSON_COMPACT) : NULL;
    json_decref(v);
    if (!value)
        return -1;
    char *presence = key_of(b, "presence:", room), *channel = key_of(b, "room:", room);
    int rc = redis_command(b->pub, fn, privdata, "EVAL %s 5 %s %s %s %s %s %s %s %s %s", lua_join,
                           presence, b->k_rooms, b->k_seq, channel, b->k_nodes, key, value,
                           b->instance, room);
    free(presence);
    free(channel);
    free(value);
    return rc;
}

static void send_leave(struct bus_redis *b, const struct retract *t, redisCallbackFn *fn,
                       void *privdata)
{
    char *presence = key_of(b, "presence:", t->room), *channel = key_of(b, "room:", t->room);
    redis_command(b->pub, fn, privdata, "EVAL %s 4 %s %s %s %s %s %s %s %s", lua_leave, presence,
                  b->k_rooms, b->k_seq, channel, t->key, t->account_id, b->instance, t->room);
    free(presence);
    free(channel);
}

static void retract_free(struct retract *t)
{
    free(t->room);
    free(t->key);
    free(t->account_id);
    free(t);
}

static void on_leave_reply(redisAsyncContext *ac, void *reply_, void *privdata)
{
    (void)ac;
    struct retract *t = privdata;
    redisReply *reply = reply_;
    if (!reply) { /* lost with the connection: retried when Redis is back */
        t->next = t->b->pending;
        t->b->pending = t;
        return;
    }
    if (reply->type == REDIS_REPLY_ERROR) {
        script_failed(t->b, "leave", reply->str, true);
        t->next = t->b->pending;
        t->b->pending = t;
        return;
    }
    retract_free(t);
}

static const char *first_error(const redisReply *reply)
{
    if (reply->type == REDIS_REPLY_ERROR)
        return reply->str;
    if (reply->type != REDIS_REPLY_ARRAY)
        return "unexpected reply";
    for (size_t i = 0; i < reply->elements; i++)
        if (reply->element[i]->type == REDIS_REPLY_ERROR)
            return reply->element[i]->str;
    return NULL;
}

static void on_restored(redisAsyncContext *ac, void *reply_, void *privdata)
{
    (void)ac;
    redisReply *reply = reply_;
    struct bus_redis *b = privdata;
    struct retract *batch = b->restoring;
    b->restoring = NULL;
    b->restore_busy = false;
    const char *error = reply ? first_error(reply) : "connection lost";
    if (error) { /* written again: the leaves and joins are idempotent */
        if (reply)
            script_failed(b, "restoring presence", error, true);
        while (batch) {
            struct retract *t = batch;
            batch = t->next;
            t->next = b->pending;
            b->pending = t;
        }
        return;
    }
    b->script_failing = false;
    while (batch) {
        struct retract *t = batch;
        batch = t->next;
        retract_free(t);
    }
}

static void send_heartbeat(struct bus_redis *b)
{
    redis_command(b->pub, NULL, NULL, "SET %s %s PX %lld", b->k_heartbeat, b->boot,
                  (long long)b->cfg->node_ttl_s * 1000);
    redis_command(b->pub, NULL, NULL, "SADD %s %s", b->k_nodes, b->instance);
}

/* After (re)connecting: heartbeat, every local connection and every leave
 * Redis missed, in one transaction, so that no node ever sees this node
 * alive with its presence half written. */
static void restore(struct bus_redis *b)
{
    if (b->restore_busy)
        return; /* one at a time; a failed one is retried at the next beat */
    struct retract *batch = b->pending;
    b->pending = NULL;
    b->restoring = batch;
    b->restore_busy = true;
    b->restore_needed = false;
    unsigned joins = 0, leaves = 0;
    redis_command(b->pub, NULL, NULL, "MULTI");
    send_heartbeat(b);
    for (struct room *r = *b->rooms; r; r = r->hh.next)
        for (struct conn *c = r->members; c; c = c->room_next, joins++)
            send_join(b, r->id, c->key, c->ident.account, c->joined_at, NULL, NULL);
    for (struct retract *t = batch; t; t = t->next, leaves++)
        send_leave(b, t, NULL, NULL);
    if (redis_command(b->pub, on_restored, b, "EXEC") < 0)
        on_restored(NULL, NULL, b);
    if (joins || leaves)
        log_info("redis_restore", "redis bus: restoring %u connections and %u leaves", joins,
                 leaves);
}

/* ---- what arrives on a channel ---- */

/* Splits "a|b|..." one field at a time. */
static bool next_field(const char **p, const char *end, const char **f, size_t *n)
{
    const char *bar = memchr(*p, '|', (size_t)(end - *p));
    if (!bar)
        return false;
    *f = *p;
    *n = (size_t)(bar - *p);
    *p = bar + 1;
    return true;
}

static bool field_is(const char *f, size_t n, const char *s)
{
    return strlen(s) == n && !memcmp(f, s, n);
}

/* "S|instance|conn[@sent]|len of to|<to><packet>", sent being the
 * publisher's wall clock in microseconds: the lag metric. A node of an older
 * release reads the conn field up to the '@' and ignores the rest, so that a
 * rolling upgrade mixes both. */
static void on_signal(struct bus_redis *b, struct sub *s, const char *text, size_t len)
{
    const char *p = text + 2, *end = text + len, *inst, *seq, *tolen;
    size_t ni, ns, nt;
    if (!next_field(&p, end, &inst, &ni) || !next_field(&p, end, &seq, &ns) ||
        !next_field(&p, end, &tolen, &nt) || !room_find(*b->rooms, s->room))
        return;
    size_t to_len = strtoul(tolen, NULL, 10);
    if (to_len > (size_t)(end - p))
        return;
    char *to = to_len ? strndup(p, to_len) : NULL;
    struct packet *pk = packet_from_bytes(p + to_len, (size_t)(end - p) - to_len);
    if (pk && (to || !to_len)) {
        char origin[160];
        snprintf(origin, sizeof(origin), "%.*s", (int)ni, inst);
        char *rest;
        struct bus_msg m = {s->room, origin, strtoull(seq, &rest, 10), to, pk};
        if (rest < seq + ns && *rest == '@') {
            long long sent_us = strtoll(rest + 1, NULL, 10), lag_us = node_now_us() - sent_us;
            /* Clocks of different hosts disagree: a negative lag is skew. */
            histogram_observe(&b->stats->bus_lag, lag_us > 0 ? (double)lag_us / 1e6 : 0.0);
        }
        b->stats->bus_received++;
        b->base.h.deliver(b->base.h.arg, &m);
    }
    if (pk)
        packet_unref(pk);
    free(to);
}

static struct conn *local_member(struct room *r, const char *key)
{
    for (struct conn *c = r->members; c; c = c->room_next)
        if (!strcmp(c->key, key))
            return c;
    return NULL;
}

/* "J|ver|publisher|key|value" or "L|ver|publisher|key|account id". */
static void on_presence(struct bus_redis *b, struct sub *s, const char *text, size_t len)
{
    const char *p = text + 2, *end = text + len, *ver, *publisher, *key;
    size_t nv, np, nk;
    if (!next_field(&p, end, &ver, &nv) || !next_field(&p, end, &publisher, &np) ||
        !next_field(&p, end, &key, &nk))
        return;
    if (strtoll(ver, NULL, 10) <= s->ver)
        return; /* already in the loaded roster */
    struct room *r = room_find(*b->rooms, s->room);
    if (!r)
        return;
    char *k = strndup(key, nk);
    if (text[0] == 'J') {
        json_t *v = json_loadb(p, (size_t)(end - p), 0, NULL);
        json_t *account = json_object_get(v, "account");
        const char *at = json_string_value(json_object_get(v, "joinedAt"));
        if (json_is_object(account) && at)
            b->base.h.present(b->base.h.arg, s->room, k, account, at);
        json_decref(v);
    } else if (is_mine(b, k)) {
        /* Another node took us for dead (we stalled past the TTL): a live
         * connection of ours is announced again. */
        struct conn *c = local_member(r, k);
        if (c)
            send_join(b, r->id, c->key, c->ident.account, c->joined_at, on_join_reply, b);
        else
            b->restore_needed = true; /* it may be entering still */
    } else {
        char *account_id = strndup(p, (size_t)(end - p));
        b->base.h.absent(b->base.h.arg, s->room, k, account_id);
        free(account_id);
    }
    free(k);
}

static void handle(struct bus_redis *b, struct sub *s, const char *text, size_t len)
{
    if (text[0] == 'S')
        on_signal(b, s, text, len);
    else
        on_presence(b, s, text, len);
}

/* Whether a message is this instance's own: signals name their sender
 * first, presence events after the version. */
static bool from_me(const struct bus_redis *b, const char *text, size_t len)
{
    const char *p = text + 2, *end = text + len, *f;
    size_t n;
    if (text[0] != 'S' && !next_field(&p, end, &f, &n))
        return false;
    return next_field(&p, end, &f, &n) && field_is(f, n, b->instance);
}

/* Until the room's presence is loaded, everything that arrives waits, so
 * that a peer's signals never overtake its user-joined. */
static void hold(struct bus_redis *b, struct sub *s, const char *text, size_t len)
{
    if (s->backlog_bytes + len > MAX_BACKLOG_BYTES) {
        if (text[0] == 'S')
            b->stats->dropped[DROP_LOAD_BACKLOG]++;
        s->unsure = true; /* a lost presence event: load again later */
        return;
    }
    struct event_copy *e = xrealloc(NULL, sizeof(*e) + len);
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
    if (channel->len <= plen || msg->type != REDIS_REPLY_STRING || msg->len < 2 ||
        msg->str[1] != '|' || !strchr("SJL", msg->str[0]))
        return;
    struct sub *s = sub_find(b, channel->str + plen);
    if (!s || s->state != SUB_SUBSCRIBED || !s->want || from_me(b, msg->str, msg->len))
        return; /* our own: delivered or applied when it happened */
    if (s->synced)
        handle(b, s, msg->str, msg->len);
    else if (s->loading)
        hold(b, s, msg->str, msg->len);
    else if (msg->str[0] == 'S')
        handle(b, s, msg->str, msg->len); /* no load possible now: late is worse */
    /* else a presence event before the load is sent: the load will hold it */
}

/* ---- loading a room's presence ---- */

static bool in_list(const redisReply *list, const char *s, size_t n)
{
    for (size_t i = 0; i < list->elements; i++)
        if (list->element[i]->len == n && !memcmp(list->element[i]->str, s, n))
            return true;
    return false;
}

/* Whether the instance of a connection key is in the list. */
static bool owner_in(const redisReply *instances, const char *key)
{
    const char *colon = strrchr(key, ':');
    return colon && in_list(instances, key, (size_t)(colon - key));
}

struct key_mark {
    const char *key;
    UT_hash_handle hh;
};

/* Within a TTL of (re)connecting, an instance that is not registered may be
 * one whose node has not reconnected yet (Redis lost its data). */
static bool in_grace(const struct bus_redis *b)
{
    return b->pub_up_since && node_mono_ms() - b->pub_up_since < (int64_t)b->cfg->node_ttl_s * 1000;
}

/* Makes the roster what Redis says. This node's own connections are the
 * truth: those Redis lacks are written again. Connections of instances that
 * are not registered are gone, except in_grace, when those already known are
 * kept. Returns true when it kept any: the room is loaded again at the next
 * beat. Adds go first, so that an account that only changed connections is
 * not seen to leave. */
static bool reconcile(struct bus_redis *b, struct room *r, const redisReply *entries,
                      const redisReply *registered)
{
    bool unsure = false, grace = in_grace(b);
    struct key_mark *marks = NULL, *m, *tmp;
    for (size_t i = 0; i + 1 < entries->elements; i += 2) {
        const char *key = entries->element[i]->str;
        m = xcalloc(1, sizeof(*m));
        m->key = key;
        HASH_ADD_KEYPTR(hh, marks, key, strlen(key), m);
        if (is_mine(b, key) || !owner_in(registered, key))
            continue;
        const redisReply *value = entries->element[i + 1];
        json_t *v = json_loadb(value->str, value->len, 0, NULL);
        json_t *account = json_object_get(v, "account");
        const char *at = json_string_value(json_object_get(v, "joinedAt"));
        if (json_is_object(account) && at)
            b->base.h.present(b->base.h.arg, r->id, key, account, at);
        json_decref(v);
    }
    struct retract *gone = NULL;
    for (struct roster_entry *e = r->roster; e; e = e->hh.next) {
        for (size_t i = 0; i < e->n_conns; i++) {
            const char *key = e->conns[i].key;
            if (is_mine(b, key))
                continue;
            if (owner_in(registered, key)) {
                HASH_FIND_STR(marks, key, m);
                if (m)
                    continue;
            } else if (grace) {
                unsure = true;
                continue;
            }
            struct retract *t = xcalloc(1, sizeof(*t));
            t->key = xstrdup(key);
            t->account_id = xstrdup(e->account_id);
            t->next = gone;
            gone = t;
        }
    }
    while (gone) {
        struct retract *t = gone;
        gone = t->next;
        b->base.h.absent(b->base.h.arg, r->id, t->key, t->account_id);
        retract_free(t);
    }
    for (struct conn *c = r->members; c; c = c->room_next) {
        HASH_FIND_STR(marks, c->key, m);
        if (!m)
            send_join(b, r->id, c->key, c->ident.account, c->joined_at, on_join_reply, b);
    }
    HASH_ITER(hh, marks, m, tmp)
    {
        HASH_DEL(marks, m);
        free(m);
    }
    return unsure;
}

static void replay_backlog(struct bus_redis *b, struct sub *s)
{
    struct event_copy *e = s->backlog;
    s->backlog = NULL;
    s->backlog_tail = &s->backlog;
    s->backlog_bytes = 0;
    while (e) {
        struct event_copy *next = e->next;
        handle(b, s, e->text, e->len);
        free(e);
        e = next;
    }
}

static void on_load(redisAsyncContext *ac, void *reply_, void *privdata)
{
    (void)ac;
    struct load_req *req = privdata;
    struct bus_redis *b = req->b;
    struct sub *s = sub_find(b, req->room);
    redisReply *reply = reply_;
    bool current = s && s->gen == req->gen;
    free(req);
    if (!current)
        return;
    s->loading = false;
    if (!reply || s->state != SUB_SUBSCRIBED)
        return; /* tried again once both connections are up */
    s->synced = true;
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 3 ||
        reply->element[0]->type != REDIS_REPLY_INTEGER ||
        reply->element[1]->type != REDIS_REPLY_ARRAY ||
        reply->element[2]->type != REDIS_REPLY_ARRAY) {
        /* Follow the events from here on, and load again at the next beat. */
        script_failed(b, "loading a room",
                      reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply", false);
        s->ver = 0;
        s->unsure = true;
    } else {
        struct room *r = room_find(*b->rooms, s->room);
        /* hold() may have lost an event meanwhile */
        s->unsure = (r && reconcile(b, r, reply->element[1], reply->element[2])) || s->unsure;
        s->ver = reply->element[0]->integer;
    }
    replay_backlog(b, s);
    open_now(s);
}

static void start_load(struct sub *s)
{
    struct bus_redis *b = s->b;
    if (s->loading || s->synced || s->state != SUB_SUBSCRIBED || !redis_ready(b->pub))
        return;
    struct load_req *req = xcalloc(1, sizeof(*req));
    req->b = b;
    snprintf(req->room, sizeof(req->room), "%s", s->room);
    req->gen = s->gen;
    char *presence = key_of(b, "presence:", s->room);
    int rc = redis_command(b->pub, on_load, req, "EVAL %s 3 %s %s %s", lua_load, presence, b->k_seq,
                           b->k_nodes);
    free(presence);
    if (rc < 0)
        free(req);
    else
        s->loading = true;
}

static void on_sub_reply(redisAsyncContext *ac, void *reply_, void *privdata)
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
    struct sub *s =
        reply->element[1]->len > plen ? sub_find(b, reply->element[1]->str + plen) : NULL;
    if (!s)
        return;
    if (!strcmp(kind, "subscribe")) {
        s->state = SUB_SUBSCRIBED;
        if (s->want)
            start_load(s);
        else
            send_unsubscribe(s);
    } else if (!strcmp(kind, "unsubscribe")) {
        s->state = SUB_IDLE;
        if (s->want)
            send_subscribe(s);
        else
            sub_free(s);
    }
}

/* ---- the two connections ---- */

static void on_sub_state(void *arg, bool up)
{
    struct bus_redis *b = arg;
    struct sub *s, *tmp;
    HASH_ITER(hh, b->subs, s, tmp)
    {
        if (up) {
            if (s->want && s->state == SUB_IDLE)
                send_subscribe(s);
            continue;
        }
        s->state = SUB_IDLE;
        sub_reset(s);
        if (!s->want)
            sub_free(s);
        else
            open_now(s); /* local members need not wait for Redis */
    }
}

static void on_swept(redisAsyncContext *ac, void *reply_, void *privdata);

static void on_beat(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct bus_redis *b = arg;
    if (!redis_ready(b->pub) || b->stopping)
        return;
    /* Half a period of slack: beats are a period apart, give or take. */
    if (b->sweep_sent && node_mono_ms() - b->sweep_sent >= b->stuck_ms - b->period_ms / 2) {
        /* Seconds without an answer: this Redis is stuck, and a new
         * connection is likelier to work than waiting on this one. */
        redis_drop(b->pub, "no answer");
        return;
    }
    if ((b->pending || b->restore_needed) && !b->restore_busy)
        restore(b); /* with the heartbeat */
    else
        send_heartbeat(b);
    if (!b->sweep_sent &&
        redis_command(b->pub, on_swept, b, "EVAL %s 3 %s %s %s %s %ld", lua_sweep, b->k_nodes,
                      b->k_seq, b->k_suspects, b->cfg->redis_prefix, b->period_ms * 3 / 2) == 0)
        b->sweep_sent = node_mono_ms();
}

static void on_pub_state(void *arg, bool up)
{
    struct bus_redis *b = arg;
    struct sub *s, *tmp;
    if (!up) {
        b->pub_up_since = 0;
        HASH_ITER(hh, b->subs, s, tmp)
        open_now(s);
        return;
    }
    b->pub_up_since = node_mono_ms();
    restore(b);
    HASH_ITER(hh, b->subs, s, tmp)
    start_load(s);
}

/* Whether the room knows connections of instances no longer registered:
 * the sweep forgot them (and published their leaves, which may have been
 * missed), or Redis lost its data. A load settles it, in order with the
 * events. */
static bool knows_unregistered(const struct bus_redis *b, const struct room *r,
                               const redisReply *registered)
{
    for (const struct roster_entry *e = r->roster; e; e = e->hh.next)
        for (size_t i = 0; i < e->n_conns; i++)
            if (!is_mine(b, e->conns[i].key) && !owner_in(registered, e->conns[i].key))
                return true;
    return false;
}

static void on_swept(redisAsyncContext *ac, void *reply_, void *privdata)
{
    (void)ac;
    struct bus_redis *b = privdata;
    redisReply *reply = reply_;
    b->sweep_sent = 0;
    if (!reply)
        return;
    if (reply->type != REDIS_REPLY_ARRAY) {
        script_failed(b, "the sweep",
                      reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply", false);
        return;
    }
    struct sub *s, *tmp;
    HASH_ITER(hh, b->subs, s, tmp)
    {
        struct room *r = s->synced ? room_find(*b->rooms, s->room) : NULL;
        if (r && (s->unsure || knows_unregistered(b, r, reply))) {
            sub_reset(s); /* load again: the sweep may have decided */
            start_load(s);
        }
    }
}

/* ---- the bus interface ---- */

static int rb_publish(struct bus *bus, const struct bus_msg *m)
{
    struct bus_redis *b = (struct bus_redis *)bus;
    b->base.h.deliver(b->base.h.arg, m);
    if (!redis_ready(b->pub)) {
        b->stats->dropped[DROP_REDIS_DOWN]++;
        return -1;
    }
    if (redis_unsent_bytes(b->pub) > MAX_UNSENT_BYTES) {
        b->stats->dropped[DROP_REDIS_BACKLOG]++;
        return -1;
    }
    /* The packet is serialized once; the command is written around it. */
    size_t to_len = m->to ? strlen(m->to) : 0;
    char head[256];
    int hl = snprintf(head, sizeof(head), "S|%s|%llu@%lld|%zu|", m->origin,
                      (unsigned long long)m->origin_conn, node_now_us(), to_len);
    char *channel = key_of(b, "room:", m->room);
    size_t ch_len = strlen(channel), msg_len = (size_t)hl + to_len + m->packet->len;
    char resp[128];
    int rl = snprintf(resp, sizeof(resp), "*3\r\n$7\r\nPUBLISH\r\n$%zu\r\n", ch_len);
    size_t total = (size_t)rl + ch_len + 40 + msg_len + 2;
    char *cmd = xrealloc(NULL, total), *p = cmd;
    memcpy(p, resp, (size_t)rl), p += rl;
    memcpy(p, channel, ch_len), p += ch_len;
    p += sprintf(p, "\r\n$%zu\r\n", msg_len);
    memcpy(p, head, (size_t)hl), p += hl;
    if (to_len)
        memcpy(p, m->to, to_len), p += to_len;
    memcpy(p, packet_text(m->packet), m->packet->len), p += m->packet->len;
    memcpy(p, "\r\n", 2), p += 2;
    int rc = redis_formatted(b->pub, NULL, NULL, cmd, (size_t)(p - cmd));
    free(cmd);
    free(channel);
    if (rc < 0) {
        b->stats->dropped[DROP_REDIS_DOWN]++;
        return -1;
    }
    b->stats->bus_published++;
    return 0;
}

static bool rb_room_open(struct bus *bus, const char *room)
{
    struct bus_redis *b = (struct bus_redis *)bus;
    struct sub *s = sub_find(b, room);
    if (!s) {
        s = xcalloc(1, sizeof(*s));
        s->b = b;
        snprintf(s->room, sizeof(s->room), "%s", room);
        s->channel = key_of(b, "room:", room);
        s->gen = ++b->next_gen;
        s->backlog_tail = &s->backlog;
        s->open_timer = evtimer_new(b->evb, on_open_timeout, s);
        HASH_ADD_STR(b->subs, room, s);
    }
    s->want = true;
    if (s->state == SUB_IDLE && redis_ready(b->sub))
        send_subscribe(s);
    /* Local members only, until Redis is back; but a node that has just
     * started waits for its first connection. */
    bool up = redis_ready(b->sub) && redis_ready(b->pub);
    if (!up && !redis_connecting(b->sub) && !redis_connecting(b->pub))
        return true;
    s->opening = true;
    struct timeval tv = {OPEN_TIMEOUT_MS / 1000, (OPEN_TIMEOUT_MS % 1000) * 1000};
    evtimer_add(s->open_timer, &tv);
    return false;
}

static void rb_room_close(struct bus *bus, const char *room)
{
    struct bus_redis *b = (struct bus_redis *)bus;
    struct sub *s = sub_find(b, room);
    if (!s)
        return;
    s->want = false;
    s->opening = false;
    evtimer_del(s->open_timer);
    sub_reset(s);
    if (s->state == SUB_SUBSCRIBED)
        send_unsubscribe(s);
    /* Still SUBSCRIBED: the connection is gone, and the subscription with it. */
    if (s->state == SUB_IDLE || s->state == SUB_SUBSCRIBED)
        sub_free(s);
}

struct join_req { /* a local connection's join, on its way to Redis */
    struct bus_redis *b;
    char room[PROTOCOL_GUID_LEN + 1];
    char *key;
    json_t *account;
    char joined_at[PROTOCOL_TIMESTAMP_LEN];
};

static void joined(struct bus_redis *b, const char *room, const char *key, json_t *account,
                   const char *joined_at)
{
    if (b->base.h.joined(b->base.h.arg, room, key))
        b->base.h.present(b->base.h.arg, room, key, account, joined_at);
}

/* Lost with the connection, the join is written again by restore(); the
 * member enters either way. */
static void on_entered(redisAsyncContext *ac, void *reply_, void *privdata)
{
    struct join_req *q = privdata;
    on_join_reply(ac, reply_, q->b);
    joined(q->b, q->room, q->key, q->account, q->joined_at);
    json_decref(q->account);
    free(q->key);
    free(q);
}

static void rb_join(struct bus *bus, const char *room, const char *key, json_t *account,
                    const char *joined_at)
{
    struct bus_redis *b = (struct bus_redis *)bus;
    if (!redis_ready(b->pub)) {
        joined(b, room, key, account, joined_at);
        return;
    }
    struct join_req *q = xcalloc(1, sizeof(*q));
    q->b = b;
    snprintf(q->room, sizeof(q->room), "%s", room);
    q->key = xstrdup(key);
    q->account = json_incref(account);
    snprintf(q->joined_at, sizeof(q->joined_at), "%s", joined_at);
    if (send_join(b, room, key, account, joined_at, on_entered, q) < 0) {
        b->restore_needed = true; /* written at the next beat */
        on_entered(NULL, NULL, q);
    }
}

static void rb_leave(struct bus *bus, const char *room, const char *key, const char *account_id)
{
    struct bus_redis *b = (struct bus_redis *)bus;
    b->base.h.absent(b->base.h.arg, room, key, account_id);
    struct retract *t = xcalloc(1, sizeof(*t));
    t->b = b;
    t->room = xstrdup(room);
    t->key = xstrdup(key);
    t->account_id = xstrdup(account_id);
    if (redis_ready(b->pub)) {
        send_leave(b, t, on_leave_reply, t);
    } else {
        t->next = b->pending;
        b->pending = t;
    }
}

static const char *rb_not_ready(struct bus *bus)
{
    struct bus_redis *b = (struct bus_redis *)bus;
    if (!redis_ready(b->pub))
        return "redis bus connection down";
    if (!redis_ready(b->sub))
        return "redis subscriber connection down";
    return NULL;
}

static void rb_stop(struct bus *bus)
{
    struct bus_redis *b = (struct bus_redis *)bus;
    b->stopping = true;
    evtimer_del(b->beat);
    redis_command(b->pub, NULL, NULL, "EVAL %s 1 %s %s", lua_goodbye, b->k_heartbeat, b->boot);
    redis_close(b->pub);
    redis_close(b->sub);
}

static void rb_free(struct bus *bus)
{
    struct bus_redis *b = (struct bus_redis *)bus;
    redis_free(b->pub); /* callbacks still due run now, with no reply */
    redis_free(b->sub);
    struct sub *s, *tmp;
    HASH_ITER(hh, b->subs, s, tmp)
    sub_free(s);
    while (b->pending) {
        struct retract *t = b->pending;
        b->pending = t->next;
        retract_free(t);
    }
    event_free(b->beat);
    free(b->instance);
    free(b->k_nodes);
    free(b->k_seq);
    free(b->k_heartbeat);
    free(b->k_rooms);
    free(b->k_suspects);
    free(b);
}

static const struct bus_ops redis_ops = {rb_publish, rb_room_open, rb_room_close, rb_join,
                                         rb_leave,   rb_not_ready, rb_stop,       rb_free};

struct bus *bus_redis_new(struct event_base *base, const struct config *cfg, const char *instance,
                          struct room **rooms, struct stats *stats, const struct bus_handler *h)
{
    struct bus_redis *b = xcalloc(1, sizeof(*b));
    b->base.ops = &redis_ops;
    b->base.h = *h;
    b->evb = base;
    b->cfg = cfg;
    b->instance = xstrdup(instance);
    b->boot = strrchr(b->instance, ':') + 1;
    b->k_nodes = key_of(b, "nodes", "");
    b->k_seq = key_of(b, "seq", "");
    b->k_heartbeat = key_of(b, "node:", cfg->node_id);
    b->k_rooms = key_of(b, "rooms:", instance);
    b->k_suspects = key_of(b, "suspects", "");
    b->rooms = rooms;
    b->stats = stats;
    b->beat = event_new(base, -1, EV_PERSIST, on_beat, b);
    /* A node is forgotten once its heartbeat has been gone 1.5 periods:
     * within TTL + 3 periods of its death, 1.75 x TTL. */
    b->period_ms = cfg->node_ttl_s * 1000 / 4;
    b->stuck_ms = b->period_ms * 2 < 5000 ? b->period_ms * 2 : 5000;
    struct timeval tv = {b->period_ms / 1000, (b->period_ms % 1000) * 1000};
    evtimer_add(b->beat, &tv);
    b->pub = redis_new(base, &cfg->redis, "bus", on_pub_state, b);
    b->sub = redis_new(base, &cfg->redis, "subscriber", on_sub_state, b);
    return &b->base;
}
