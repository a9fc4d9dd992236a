/* The Redis bus's private header, shared by its parts:
 *   bus_redis.c     the bus operations, the two connections, start and stop;
 *   bus_channel.c   room channels: the subscription state machine, what
 *                   arrives on a channel, the backlog and the presence load;
 *   bus_presence.c  this node's presence (join, leave, leaves to write
 *                   again, restore) and the other nodes' (reconcile);
 *   bus_beat.c      the heartbeat, the sweep of dead nodes and the goodbye;
 *   bus_script.c    the Lua scripts (node/lua/), loaded once, run with
 *                   EVALSHA;
 *   bus_trust.c     what is accepted from a channel (form, MAC, replays)
 *                   and the signature on what this node publishes.
 * The bus sees no connection, room or node: it keeps its own record of this
 * node's presence entries and of the other nodes' keys in each room, and
 * tells the relay what changes through the bus_handler. The design is in
 * docs/cluster.md. */
#ifndef SIGNAL_BUS_REDIS_H
#define SIGNAL_BUS_REDIS_H

#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <uthash.h>

#include "bus.h"
#include "bus_auth.h"
#include "bus_wire.h"
#include "protocol.h"
#include "redis.h"
#include "stats.h"

enum channel_state { CHANNEL_IDLE, CHANNEL_SUBSCRIBING, CHANNEL_SUBSCRIBED, CHANNEL_UNSUBSCRIBING };

/* A message that arrived while its room's presence was loading. */
struct held_msg {
    struct held_msg *next;
    size_t len;
    char text[];
};

/* One of this node's connections in a room, as written to Redis. */
struct own_entry {
    char *key;
    json_t *account;
    char joined_at[PROTOCOL_TIMESTAMP_LEN];
    UT_hash_handle hh;
};

/* Another node's connection in a room, as told to the relay. */
struct remote_entry {
    char *key;
    char *account_id;
    UT_hash_handle hh;
};

/* One room's channel and presence. It outlives the room while a
 * (un)subscription is in flight, so that there is never more than one per
 * channel. */
struct channel {
    char room[PROTOCOL_GUID_LEN + 1];
    char *name; /* "<prefix>room:<room id>" */
    enum channel_state state;
    bool want;              /* the room has local members */
    bool synced;            /* the presence matches Redis as of ver, then follows events */
    bool loading;           /* a load is on its way */
    bool opening;           /* handler.ready is owed */
    uint64_t gen;           /* bumped whenever a load in flight becomes stale */
    long long presence_ver; /* the cluster-wide presence version loaded */
    bool unsure;            /* kept entries Redis did not confirm: load again */
    struct held_msg *backlog, **backlog_tail;
    size_t backlog_bytes;
    size_t unechoed; /* bytes this node published here, not yet come back (bus_flow.c) */
    struct event *open_timer;
    struct own_entry *mine;      /* while want */
    struct remote_entry *others; /* while want */
    struct bus_redis *b;
    UT_hash_handle hh;
};

/* A leave that Redis has not confirmed yet. */
struct retract {
    struct bus_redis *b;
    char *room, *key, *account_id;
    struct retract *next;
};

enum script { SCRIPT_JOIN, SCRIPT_LEAVE, SCRIPT_LOAD, SCRIPT_SWEEP, SCRIPT_GOODBYE, N_SCRIPTS };

struct bus_redis {
    struct bus base;
    struct event_base *evb;
    const struct config *cfg;
    size_t index;                /* the shard: cfg->redis[index] */
    const struct redis_url *url; /* cfg->redis[index] */
    char *tag; /* for logs: "" with one shard, else " on shard <index> (<label>)" */
    char *instance, *boot;
    char *k_nodes, *k_seq, *k_heartbeat, *k_rooms, *k_suspects, *k_lists;
    /* The shard list as this node sees it, written with each heartbeat
     * (bus_beat.c), and how many live nodes wrote another, as the last
     * sweep found. */
    char *shard_list;
    size_t mismatched;
    struct stats *stats;
    struct redis *publisher, *subscriber;
    struct channel *channels;  /* by room id */
    struct retract *pending;   /* leaves to write again */
    struct retract *restoring; /* leaves in the restore under way */
    bool restore_busy, restore_needed, script_failing;
    struct event *beat;
    int64_t publisher_up_since; /* monotonic ms; 0 while down */
    uint64_t next_gen;          /* one sequence for every channel, so a load outlives none */
    int64_t sweep_sent;         /* monotonic ms; 0 when no sweep's answer is due */
    long period_ms;             /* of the heartbeat and the sweep: a quarter of the TTL */
    long stuck_ms;              /* no answer to a sweep for this long: reconnect */
    bool stopping;
    bool whole_scripts; /* the ACL refuses EVALSHA: scripts are sent with EVAL */
    /* Flow control (bus_flow.c): publications waiting for earlier ones to
     * come back, and what came back, to see it stall. */
    struct held_pub *held, **held_tail;
    size_t unechoed_bytes, held_bytes; /* this shard's share of the stats' sums */
    size_t peer_buffer;                /* the largest subscriber output buffer, last asked */
    uint64_t echoes, echoes_at_hold;
    struct event *flow_timer;
    struct event *poll_timer; /* CLIENT LIST, for the subscribers' buffers */
    bool poll_in_flight, published_since_poll, no_client_list;
    bool slow; /* handler.slow(true) was the last said */
    /* Authentication (bus_trust.c): the keys, NULL without
     * SIGNAL_CLUSTER_SECRET; the last sequence number signed in each
     * stream; what each signer sent; the rate of the log. */
    struct bus_key *key, *key_accept;
    uint64_t signed_signals, signed_presence;
    struct signer *signers;
    int64_t rejects_logged_ms; /* monotonic; 0 before the first line */
    uint64_t rejects_unlogged;
};

/* ---- bus_channel.c ---- */
struct channel *channel_find(struct bus_redis *b, const char *room);
/* The channel of a room that gets its first local member (made if needed). */
struct channel *channel_open(struct bus_redis *b, const char *room);
/* The room's last local member has gone. */
void channel_close(struct channel *s);
void channel_free(struct channel *s);
/* Forgets what was loaded: the next load starts afresh. */
void channel_reset(struct channel *s);
/* handler.ready, if it is owed. */
void channel_open_now(struct channel *s);
void channel_start_load(struct channel *s);
/* The subscribing connection's state changed. */
void channel_on_state(void *arg, bool up);

/* ---- bus_flow.c ---- */
void flow_init(struct bus_redis *b);
/* The node is stopping: what waits goes out now, and the timers stop. */
void flow_stop(struct bus_redis *b);
/* Drops what still waits (counted). */
void flow_free(struct bus_redis *b);
/* Sends the PUBLISH cmd (RESP, cmd_len bytes) of a msg_len-byte message on
 * room's channel, or keeps a copy for later, behind what is already out.
 * Returns -1 when it is dropped (counted). */
int flow_publish(struct bus_redis *b, const char *room, const char *cmd, size_t cmd_len,
                 size_t msg_len);
/* len bytes of this node's came back on s. */
void flow_echoed(struct channel *s, size_t len);
/* What is out on s will not come back (unsubscribed, connection lost). */
void flow_forget(struct channel *s);
/* The publishing connection is down: what waits is dropped (counted). */
void flow_publisher_down(struct bus_redis *b);

/* ---- bus_trust.c ---- */
/* Makes the keys of SIGNAL_CLUSTER_SECRET(_ACCEPT), if set. */
void trust_init(struct bus_redis *b);
void trust_free(struct bus_redis *b);
/* Writes the authentication head of a message of kind this node publishes
 * on channel (parts: the message less a J or L's version) into out (size
 * bytes, at least BUS_AUTH_HEAD_MAX). Returns its length: 0, and out
 * empty, without a secret. */
size_t trust_sign(struct bus_redis *b, char *out, size_t size, const char *channel,
                  enum wire_kind kind, const struct wire_str *parts, size_t n);
/* Decodes and checks a message read on channel (channel_len bytes), the
 * channel of room. Returns true with *w and *mine (this node published it)
 * filled when it may be used; false when it was dropped (counted, logged). */
bool trust_accept(struct bus_redis *b, const char *channel, size_t channel_len, const char *room,
                  const char *text, size_t len, struct wire_msg *w, bool *mine);
/* Forgets the sequence numbers of signers not heard from in
 * BUS_MAX_AGE_MS. */
void trust_forget_quiet(struct bus_redis *b);

/* ---- bus_presence.c ---- */
/* Records and writes a local connection's join; handler.joined follows. */
void presence_join(struct bus_redis *b, struct channel *s, const char *key, json_t *account,
                   const char *joined_at);
void presence_leave(struct bus_redis *b, const char *room, const char *key, const char *account_id);
/* Applies a J or L message of another node. */
void presence_event(struct bus_redis *b, struct channel *s, const struct wire_msg *m);
/* Makes the room's presence what a load found; returns true when it kept
 * entries Redis did not confirm. */
bool presence_reconcile(struct bus_redis *b, struct channel *s, const redisReply *entries,
                        const redisReply *registered);
/* Whether the room knows connections of instances not in registered. */
bool presence_knows_unregistered(const struct channel *s, const redisReply *registered);
/* Publishes, signed, the leaves a sweep made without publishing them
 * (room, key, account id, version, four elements each). */
void presence_publish_swept(struct bus_redis *b, const redisReply *left);
/* Forgets the room's records (it has no local member left). */
void presence_clear(struct channel *s);
/* Writes the heartbeat, every local connection and every pending leave in
 * one transaction. */
void presence_restore(struct bus_redis *b);
/* A script Redis refused: said once until one works again; presence is
 * written again at the next heartbeat when rewrite is set. */
void presence_script_failed(struct bus_redis *b, const char *what, const char *why, bool rewrite);
void retract_free(struct retract *t);

/* ---- bus_beat.c ---- */
void beat_start(struct bus_redis *b);
void beat_send(struct bus_redis *b);
void beat_goodbye(struct bus_redis *b);

/* ---- bus_script.c ---- */
/* Runs script with numkeys keys then args (NULL-ended), through EVALSHA; on
 * NOSCRIPT it is sent again with EVAL. fn then gets the reply as usual.
 * Returns -1 when the connection is not ready: fn will not run. */
int script_run(struct bus_redis *b, enum script which, redisCallbackFn *fn, void *privdata,
               int numkeys, const char *const *argv);
/* Loads every script on the publishing connection (after it connects). */
void script_load_all(struct bus_redis *b);

#endif
