/* The heartbeat, the sweep of dead nodes and the goodbye. Every period (a
 * quarter of SIGNAL_NODE_TTL_S) a node refreshes its heartbeat key and runs
 * the sweep script (node/lua/sweep.lua), which forgets the instances whose
 * heartbeat has been gone 1.5 periods; the sweep's answer, the registered
 * instances, tells each room whether it knows connections of forgotten
 * ones. With the heartbeat goes the node's shard list, and the sweep's answer
 * brings the other live nodes': nodes whose lists differ would look for a
 * room on different shards, so a difference is logged and counted. See
 * docs/cluster.md, "Heartbeat and sweep" and "Sharding". */
#include <string.h>

#include "bus_redis.h"
#include "clock.h"
#include "log.h"
#include "timer.h"

void beat_send(struct bus_redis *b)
{
    redis_command(b->publisher, NULL, NULL, "SET %s %s PX %lld", b->k_heartbeat, b->boot,
                  (long long)b->cfg->node_ttl_s * 1000);
    redis_command(b->publisher, NULL, NULL, "SADD %s %s", b->k_nodes, b->instance);
    redis_command(b->publisher, NULL, NULL, "HSET %s %s %s", b->k_lists, b->instance,
                  b->shard_list);
}

/* Compares the live nodes' shard lists (instance, list, ...) with this
 * node's; says so when the number that differ changes. A node that has not
 * written one yet (an older release) is not counted. */
static void compare_lists(struct bus_redis *b, const redisReply *lists)
{
    size_t differ = 0;
    const redisReply *example = NULL, *example_list = NULL;
    for (size_t i = 0; i + 1 < lists->elements; i += 2) {
        const redisReply *inst = lists->element[i], *list = lists->element[i + 1];
        if (inst->type != REDIS_REPLY_STRING || list->type != REDIS_REPLY_STRING || !list->len ||
            !strcmp(inst->str, b->instance) || !strcmp(list->str, b->shard_list))
            continue;
        differ++;
        if (!example) {
            example = inst;
            example_list = list;
        }
    }
    if (differ == b->mismatched)
        return;
    b->mismatched = differ;
    if (differ)
        log_warn("redis_shard_mismatch",
                 "redis bus%s: %zu live node%s use%s another shard list (%s has \"%.200s\", this "
                 "node \"%.200s\"): rooms may be split between nodes; give every node the same "
                 "SIGNAL_REDIS_URL",
                 b->tag, differ, differ == 1 ? "" : "s", differ == 1 ? "s" : "", example->str,
                 example_list->str, b->shard_list);
    else
        log_info("redis_shard_mismatch",
                 "redis bus%s: every live node uses this node's shard list again", b->tag);
}

static void on_swept(redisAsyncContext *ac, void *reply_, void *privdata)
{
    (void)ac;
    struct bus_redis *b = privdata;
    redisReply *reply = reply_;
    b->sweep_sent = 0;
    if (!reply)
        return;
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 3 ||
        reply->element[0]->type != REDIS_REPLY_ARRAY ||
        reply->element[1]->type != REDIS_REPLY_ARRAY ||
        reply->element[2]->type != REDIS_REPLY_ARRAY) {
        presence_script_failed(b, "the sweep",
                               reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply",
                               false);
        return;
    }
    presence_publish_swept(b, reply->element[1]);
    compare_lists(b, reply->element[2]);
    const redisReply *registered = reply->element[0];
    struct channel *s, *tmp;
    HASH_ITER(hh, b->channels, s, tmp)
    {
        if (s->synced && s->want && (s->unsure || presence_knows_unregistered(s, registered))) {
            channel_reset(s); /* load again: the sweep may have decided */
            channel_start_load(s);
        }
    }
}

static void send_sweep(struct bus_redis *b)
{
    char confirm_ms[24];
    snprintf(confirm_ms, sizeof(confirm_ms), "%ld", b->period_ms * 3 / 2);
    /* A script cannot sign: with a secret, the node publishes the leaves. */
    const char *argv[] = {b->k_nodes,           b->k_seq,   b->k_suspects,      b->k_lists,
                          b->cfg->redis_prefix, confirm_ms, b->key ? "0" : "1", NULL};
    if (script_run(b, SCRIPT_SWEEP, on_swept, b, 4, argv) == 0)
        b->sweep_sent = clock_mono_ms();
}

static void on_beat(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct bus_redis *b = arg;
    if (!redis_ready(b->publisher) || b->stopping)
        return;
    trust_forget_quiet(b);
    /* Half a period of slack: beats are a period apart, give or take. */
    if (b->sweep_sent && clock_mono_ms() - b->sweep_sent >= b->stuck_ms - b->period_ms / 2) {
        /* Seconds without an answer: this Redis is stuck, and a new
         * connection is likelier to work than waiting on this one. */
        redis_drop(b->publisher, "no answer");
        return;
    }
    if ((b->pending || b->restore_needed) && !b->restore_busy)
        presence_restore(b); /* with the heartbeat */
    else
        beat_send(b);
    if (!b->sweep_sent)
        send_sweep(b);
}

void beat_start(struct bus_redis *b)
{
    /* A node is forgotten once its heartbeat has been gone 1.5 periods:
     * within TTL + 3 periods of its death, 1.75 x TTL. */
    b->period_ms = b->cfg->node_ttl_s * 1000 / 4;
    b->stuck_ms = b->period_ms * 2 < 5000 ? b->period_ms * 2 : 5000;
    b->beat = event_new(b->evb, -1, EV_PERSIST, on_beat, b);
    timer_add_ms(b->beat, b->period_ms);
}

void beat_goodbye(struct bus_redis *b)
{
    evtimer_del(b->beat);
    const char *argv[] = {b->k_heartbeat, b->boot, NULL};
    script_run(b, SCRIPT_GOODBYE, NULL, NULL, 1, argv);
}
