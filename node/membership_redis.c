/* Membership from a Redis set kept by the platform: SISMEMBER, asked
 * asynchronously on the node's loop, with a timeout so that a stalled Redis
 * turns into 1013 rather than a connection waiting forever. */
#include <hiredis/hiredis.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "membership.h"
#include "redis.h"
#include "timer.h"
#include "xalloc.h"

#define ANSWER_TIMEOUT_MS 3000

struct membership_redis {
    struct membership base;
    struct event_base *evb;
    struct redis *redis;
    char *key_pattern;
};

/* Owned by the pending hiredis callback, which always runs exactly once. */
struct membership_req {
    struct membership_redis *m;
    membership_cb cb; /* NULL once answered, timed out or cancelled */
    void *arg;
    struct event *timeout;
};

static char *room_key(const char *pattern, const char *room)
{
    size_t n = 0;
    for (const char *p = pattern; (p = strstr(p, "{room}")); p += 6)
        n++;
    char *key = xcalloc(1, strlen(pattern) + n * strlen(room) + 1), *o = key;
    for (const char *p = pattern; *p;) {
        if (!strncmp(p, "{room}", 6)) {
            o = stpcpy(o, room);
            p += 6;
        } else {
            *o++ = *p++;
        }
    }
    *o = '\0';
    return key;
}

static void answer(struct membership_req *req, enum membership_answer a)
{
    membership_cb cb = req->cb;
    req->cb = NULL;
    evtimer_del(req->timeout);
    if (cb)
        cb(req->arg, a);
}

static void on_reply(redisAsyncContext *ac, void *reply_, void *privdata)
{
    (void)ac;
    redisReply *reply = reply_;
    struct membership_req *req = privdata;
    if (!reply || reply->type != REDIS_REPLY_INTEGER) {
        if (reply && reply->type == REDIS_REPLY_ERROR)
            log_warn("membership_error", "membership: SISMEMBER failed: %s", reply->str);
        answer(req, MEMBERSHIP_UNAVAILABLE);
    } else {
        answer(req, reply->integer == 1 ? MEMBERSHIP_YES : MEMBERSHIP_NO);
    }
    event_free(req->timeout);
    free(req);
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct membership_req *req = arg;
    struct redis *r = req->m->redis;
    log_warn("membership_timeout", "membership: no answer from Redis within %d ms",
             ANSWER_TIMEOUT_MS);
    answer(req, MEMBERSHIP_UNAVAILABLE);
    /* A Redis that stalls this long is treated as gone; this frees req too. */
    redis_drop(r, "no answer");
}

static enum membership_answer redis_ask(struct membership *m, const struct identity *id,
                                        const char *room, membership_cb cb, void *arg,
                                        struct membership_req **out)
{
    struct membership_redis *mr = (struct membership_redis *)m;
    *out = NULL;
    struct membership_req *req = xcalloc(1, sizeof(*req));
    req->m = mr;
    req->cb = cb;
    req->arg = arg;
    req->timeout = evtimer_new(mr->evb, on_timeout, req);
    if (!req->timeout) {
        free(req);
        return MEMBERSHIP_UNAVAILABLE;
    }
    char *key = room_key(mr->key_pattern, room);
    int rc = redis_command(mr->redis, on_reply, req, "SISMEMBER %s %s", key, id->account_id);
    free(key);
    if (rc < 0) {
        event_free(req->timeout);
        free(req);
        return MEMBERSHIP_UNAVAILABLE;
    }
    timer_add_ms(req->timeout, ANSWER_TIMEOUT_MS);
    *out = req;
    return MEMBERSHIP_PENDING;
}

static void redis_cancel(struct membership_req *req)
{
    req->cb = NULL;
    evtimer_del(req->timeout);
}

static void redis_membership_free(struct membership *m)
{
    struct membership_redis *mr = (struct membership_redis *)m;
    free(mr->key_pattern);
    free(mr);
}

static const struct membership_ops redis_ops = {redis_ask, redis_cancel, redis_membership_free};

struct membership *membership_redis_new(struct event_base *evb, struct redis *r,
                                        const char *key_pattern)
{
    struct membership_redis *mr = xcalloc(1, sizeof(*mr));
    mr->base.ops = &redis_ops;
    mr->evb = evb;
    mr->redis = r;
    mr->key_pattern = xstrdup(key_pattern);
    return &mr->base;
}
