/* Presence in the Redis bus: this node's connections (join, leave, the
 * leaves Redis has not confirmed, the restore after Redis comes back) and
 * the other nodes' (applying their J and L messages, and reconciling what a
 * load found). The bus keeps its own record of both per room, in its channel:
 * `mine`, this node's entries as written, and `others`, the other nodes'
 * keys as told to the relay, so that it never reads the relay's rooms. See
 * docs/cluster.md, "Joins, leaves and user-joined / user-left" and
 * "Reconnecting and restoring". */
#include <stdlib.h>
#include <string.h>
#include <utlist.h>

#include "buf.h"
#include "bus_redis.h"
#include "clock.h"
#include "log.h"
#include "xalloc.h"

/* ---- the relay's view of the other nodes ---- */

/* Another node's connection is in the room: recorded, then told. */
static void remote_present(struct channel *s, const char *key, json_t *account,
                           const char *joined_at)
{
    struct remote_entry *e;
    HASH_FIND_STR(s->others, key, e);
    if (!e) {
        const char *id = json_string_value(json_object_get(account, "id"));
        e = xcalloc(1, sizeof(*e));
        e->key = xstrdup(key);
        e->account_id = xstrdup(id ? id : "");
        HASH_ADD_KEYPTR(hh, s->others, e->key, strlen(e->key), e);
    }
    s->b->base.h.present(s->b->base.h.arg, s->room, key, account, joined_at);
}

/* Another node's connection has left the room. */
static void remote_absent(struct channel *s, const char *key, const char *account_id)
{
    struct remote_entry *e;
    HASH_FIND_STR(s->others, key, e);
    if (e) {
        HASH_DEL(s->others, e);
        free(e->key);
        free(e->account_id);
        free(e);
    }
    s->b->base.h.absent(s->b->base.h.arg, s->room, key, account_id);
}

static void own_free(struct channel *s, struct own_entry *e)
{
    HASH_DEL(s->mine, e);
    json_decref(e->account);
    free(e->key);
    free(e);
}

/* HASH_DEL unlinks each entry before it is freed; clang's analyzer cannot
 * follow uthash's table and reports a use after free. */
// NOLINTBEGIN(clang-analyzer-unix.Malloc)
void presence_clear(struct channel *s)
{
    while (s->mine)
        own_free(s, s->mine);
    while (s->others) {
        struct remote_entry *r = s->others;
        HASH_DEL(s->others, r);
        free(r->key);
        free(r->account_id);
        free(r);
    }
}
// NOLINTEND(clang-analyzer-unix.Malloc)

/* ---- writing this node's presence ---- */

void presence_script_failed(struct bus_redis *b, const char *what, const char *why, bool rewrite)
{
    /* A master demoted under us (a failover whose event was missed): the
     * publishing connection reconnects, and its handshake's ROLE check
     * finds the master again. */
    if (strstr(why, "READONLY")) {
        log_warn("redis_not_master", "redis bus%s: %s refused: %s; reconnecting", b->tag, what,
                 why);
        redis_drop(b->publisher, "the server is a replica now");
        return;
    }
    if (!b->script_failing)
        log_error("redis_script_failed", "redis bus%s: %s failed: %s; retrying at each heartbeat",
                  b->tag, what, why);
    b->script_failing = true;
    b->restore_needed = b->restore_needed || rewrite;
}

static void on_join_reply(redisAsyncContext *ac, void *reply_, void *privdata)
{
    (void)ac;
    redisReply *reply = reply_;
    if (reply && reply->type == REDIS_REPLY_ERROR)
        presence_script_failed(privdata, "join", reply->str, true);
}

/* The authentication head of the J or L event a script publishes for key
 * ("J|" or "L|", then "<version>|<this instance>|<key>|<value>"): empty
 * without a secret. The script puts it in front of the event. */
static void sign_event(struct bus_redis *b, char auth[BUS_AUTH_HEAD_MAX], const char *channel,
                       const char *kind, const char *key, const char *value)
{
    const struct wire_str parts[] = {{kind, 2}, {b->instance, strlen(b->instance)},
                                     {"|", 1},  {key, strlen(key)},
                                     {"|", 1},  {value, strlen(value)}};
    trust_sign(b, auth, BUS_AUTH_HEAD_MAX, channel, (enum wire_kind)kind[0], parts, 6);
}

/* Writes an entry with the join script; returns -1 when it could not be
 * sent: fn will not run. */
static int send_join(struct bus_redis *b, const char *room, const struct own_entry *e,
                     redisCallbackFn *fn, void *privdata)
{
    json_t *v = json_pack("{sOss}", "account", e->account, "joinedAt", e->joined_at);
    char *value = v ? json_dumps(v, JSON_COMPACT) : NULL;
    json_decref(v);
    if (!value)
        return -1;
    char *presence = wire_name(b->cfg->redis_prefix, "presence:", room);
    char *channel = wire_name(b->cfg->redis_prefix, "room:", room);
    char auth[BUS_AUTH_HEAD_MAX];
    sign_event(b, auth, channel, "J|", e->key, value);
    const char *argv[] = {presence, b->k_rooms,  b->k_seq, channel, b->k_nodes, e->key,
                          value,    b->instance, room,     auth,    NULL};
    int rc = script_run(b, SCRIPT_JOIN, fn, privdata, 5, argv);
    free(presence);
    free(channel);
    free(value);
    return rc;
}

static void send_leave(struct bus_redis *b, const struct retract *t, redisCallbackFn *fn,
                       void *privdata)
{
    char *presence = wire_name(b->cfg->redis_prefix, "presence:", t->room);
    char *channel = wire_name(b->cfg->redis_prefix, "room:", t->room);
    char auth[BUS_AUTH_HEAD_MAX];
    sign_event(b, auth, channel, "L|", t->key, t->account_id);
    const char *argv[] = {presence,      b->k_rooms,  b->k_seq, channel, t->key,
                          t->account_id, b->instance, t->room,  auth,    NULL};
    if (script_run(b, SCRIPT_LEAVE, fn, privdata, 4, argv) < 0 && fn)
        fn(NULL, NULL, privdata); /* not sent: kept for the next restore */
    free(presence);
    free(channel);
}

void retract_free(struct retract *t)
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
        LL_PREPEND(t->b->pending, t);
        return;
    }
    if (reply->type == REDIS_REPLY_ERROR) {
        presence_script_failed(t->b, "leave", reply->str, true);
        LL_PREPEND(t->b->pending, t);
        return;
    }
    retract_free(t);
}

/* A local connection's join, on its way to Redis. */
struct join_req {
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

/* Lost with the connection, the join is written again by the restore; the
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

void presence_join(struct bus_redis *b, struct channel *s, const char *key, json_t *account,
                   const char *joined_at)
{
    struct own_entry *e;
    HASH_FIND_STR(s->mine, key, e);
    if (!e) {
        e = xcalloc(1, sizeof(*e));
        e->key = xstrdup(key);
        e->account = json_incref(account);
        snprintf(e->joined_at, sizeof(e->joined_at), "%s", joined_at);
        HASH_ADD_KEYPTR(hh, s->mine, e->key, strlen(e->key), e);
    }
    if (!redis_ready(b->publisher)) {
        joined(b, s->room, key, account, joined_at);
        return;
    }
    struct join_req *q = xcalloc(1, sizeof(*q));
    q->b = b;
    snprintf(q->room, sizeof(q->room), "%s", s->room);
    q->key = xstrdup(key);
    q->account = json_incref(account);
    snprintf(q->joined_at, sizeof(q->joined_at), "%s", joined_at);
    if (send_join(b, s->room, e, on_entered, q) < 0) {
        b->restore_needed = true; /* written at the next beat */
        on_entered(NULL, NULL, q);
    }
}

void presence_leave(struct bus_redis *b, const char *room, const char *key, const char *account_id)
{
    struct channel *s = channel_find(b, room);
    struct own_entry *e = NULL;
    if (s)
        HASH_FIND_STR(s->mine, key, e);
    if (e)
        own_free(s, e);
    b->base.h.absent(b->base.h.arg, room, key, account_id);
    struct retract *t = xcalloc(1, sizeof(*t));
    t->b = b;
    t->room = xstrdup(room);
    t->key = xstrdup(key);
    t->account_id = xstrdup(account_id);
    if (redis_ready(b->publisher)) {
        send_leave(b, t, on_leave_reply, t);
    } else {
        LL_PREPEND(b->pending, t);
    }
}

/* ---- the restore ---- */

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
            presence_script_failed(b, "restoring presence", error, true);
        if (reply && !strncmp(error, "NOSCRIPT", 8))
            script_load_all(b);
        LL_CONCAT(b->pending, batch);
        return;
    }
    b->script_failing = false;
    struct retract *t, *tmp;
    LL_FOREACH_SAFE(batch, t, tmp)
    retract_free(t);
}

/* After (re)connecting: heartbeat, every local connection and every leave
 * Redis missed, in one transaction, so that no node ever sees this node
 * alive with its presence half written. */
void presence_restore(struct bus_redis *b)
{
    if (b->restore_busy)
        return; /* one at a time; a failed one is retried at the next beat */
    struct retract *batch = b->pending;
    b->pending = NULL;
    b->restoring = batch;
    b->restore_busy = true;
    b->restore_needed = false;
    unsigned joins = 0, leaves = 0;
    redis_command(b->publisher, NULL, NULL, "MULTI");
    beat_send(b);
    struct channel *s, *tmp;
    HASH_ITER(hh, b->channels, s, tmp)
    {
        for (const struct own_entry *e = s->mine; e; e = e->hh.next, joins++)
            send_join(b, s->room, e, NULL, NULL);
    }
    for (struct retract *t = batch; t; t = t->next, leaves++)
        send_leave(b, t, NULL, NULL);
    if (redis_command(b->publisher, on_restored, b, "EXEC") < 0)
        on_restored(NULL, NULL, b);
    if (joins || leaves)
        log_info("redis_restore", "redis bus%s: restoring %u connections and %u leaves", b->tag,
                 joins, leaves);
}

/* ---- the other nodes' presence ---- */

/* Applies the value of a J message or of a loaded entry. */
static void present_from_value(struct channel *s, const char *key, const char *value, size_t len)
{
    json_t *v = json_loadb(value, len, 0, NULL);
    json_t *account = json_object_get(v, "account");
    const char *at = json_string_value(json_object_get(v, "joinedAt"));
    if (json_is_object(account) && at)
        remote_present(s, key, account, at);
    json_decref(v);
}

void presence_event(struct bus_redis *b, struct channel *s, const struct wire_msg *m)
{
    if (m->version <= s->presence_ver)
        return; /* already in the loaded presence */
    char *key = xstrndup(m->key.p, m->key.len);
    if (m->kind == WIRE_JOIN) {
        present_from_value(s, key, m->value.p, m->value.len);
    } else if (wire_key_of(key, b->instance)) {
        /* Another node took us for dead (we stalled past the TTL): a live
         * connection of ours is announced again. */
        struct own_entry *e;
        HASH_FIND_STR(s->mine, key, e);
        if (e)
            send_join(b, s->room, e, on_join_reply, b);
    } else {
        char *account_id = xstrndup(m->value.p, m->value.len);
        remote_absent(s, key, account_id);
        free(account_id);
    }
    free(key);
}

void presence_publish_swept(struct bus_redis *b, const redisReply *left)
{
    for (size_t i = 0; i + 3 < left->elements; i += 4) {
        const redisReply *room = left->element[i], *key = left->element[i + 1],
                         *id = left->element[i + 2], *v = left->element[i + 3];
        if (room->type != REDIS_REPLY_STRING || key->type != REDIS_REPLY_STRING ||
            id->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_INTEGER)
            continue;
        char *channel = wire_name(b->cfg->redis_prefix, "room:", room->str);
        struct buf msg;
        buf_init(&msg, BUS_AUTH_HEAD_MAX + 64 + key->len + id->len);
        char auth[BUS_AUTH_HEAD_MAX];
        /* The sweep's leaves keep "sweep" for the publisher, so that no
         * node takes them for its own echo; the head names the signer. */
        const struct wire_str parts[] = {
            {"L|", 2}, {"sweep|", 6}, {key->str, key->len}, {"|", 1}, {id->str, id->len}};
        size_t al = trust_sign(b, auth, sizeof(auth), channel, WIRE_LEAVE, parts, 5);
        buf_append(&msg, auth, al);
        buf_appendf(&msg, "L|%lld|sweep|", v->integer);
        buf_append(&msg, key->str, key->len);
        buf_append(&msg, "|", 1);
        buf_append(&msg, id->str, id->len);
        redis_command(b->publisher, NULL, NULL, "PUBLISH %s %b", channel, msg.data, msg.len);
        buf_free(&msg);
        free(channel);
    }
}

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

bool presence_knows_unregistered(const struct channel *s, const redisReply *registered)
{
    for (const struct remote_entry *e = s->others; e; e = e->hh.next)
        if (!owner_in(registered, e->key))
            return true;
    return false;
}

/* Within a TTL of (re)connecting, an instance that is not registered may be
 * one whose node has not reconnected yet (Redis lost its data). */
static bool in_grace(const struct bus_redis *b)
{
    return b->publisher_up_since &&
           clock_mono_ms() - b->publisher_up_since < (int64_t)b->cfg->node_ttl_s * 1000;
}

struct key_mark {
    const char *key;
    UT_hash_handle hh;
};

/* Makes the room's presence what Redis says. This node's own connections are
 * the truth: those Redis lacks are written again. Connections of instances
 * that are not registered are gone, except in_grace, when those already
 * known are kept. Returns true when it kept any: the room is loaded again at
 * the next beat. Adds go first, so that an account that only changed
 * connections is not seen to leave. */
bool presence_reconcile(struct bus_redis *b, struct channel *s, const redisReply *entries,
                        const redisReply *registered)
{
    bool unsure = false, grace = in_grace(b);
    struct key_mark *marks = NULL, *m, *mtmp;
    for (size_t i = 0; i + 1 < entries->elements; i += 2) {
        const char *key = entries->element[i]->str;
        m = xcalloc(1, sizeof(*m));
        m->key = key;
        HASH_ADD_KEYPTR(hh, marks, key, strlen(key), m);
        if (wire_key_of(key, b->instance) || !owner_in(registered, key))
            continue;
        const redisReply *value = entries->element[i + 1];
        present_from_value(s, key, value->str, value->len);
    }
    struct remote_entry *e, *etmp;
    HASH_ITER(hh, s->others, e, etmp)
    {
        if (owner_in(registered, e->key)) {
            HASH_FIND_STR(marks, e->key, m);
            if (m)
                continue;
        } else if (grace) {
            unsure = true;
            continue;
        }
        char *key = xstrdup(e->key), *account_id = xstrdup(e->account_id);
        remote_absent(s, key, account_id); /* frees e */
        free(key);
        free(account_id);
    }
    for (const struct own_entry *o = s->mine; o; o = o->hh.next) {
        HASH_FIND_STR(marks, o->key, m);
        if (!m)
            send_join(b, s->room, o, on_join_reply, b);
    }
    HASH_ITER(hh, marks, m, mtmp)
    {
        HASH_DEL(marks, m);
        free(m);
    }
    return unsure;
}
