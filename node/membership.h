/* Room membership: may this account join this room? Two backends: `token`
 * reads the JWT's rooms claim and answers at once (403 at HTTP); `redis`
 * asks SISMEMBER without blocking the loop and answers later. */
#ifndef SIGNAL_MEMBERSHIP_H
#define SIGNAL_MEMBERSHIP_H

#include <stdbool.h>

#include "auth.h"

enum membership_answer {
    MEMBERSHIP_YES,
    MEMBERSHIP_NO,
    MEMBERSHIP_UNAVAILABLE,
    MEMBERSHIP_PENDING
};

typedef void (*membership_cb)(void *arg, enum membership_answer a);

struct membership;
struct membership_req;

struct membership_ops {
    /* Answers YES/NO/UNAVAILABLE at once, or PENDING: then cb gets the answer
     * later, unless *req is cancelled first. */
    enum membership_answer (*ask)(struct membership *m, const struct identity *id, const char *room,
                                  membership_cb cb, void *arg, struct membership_req **req);
    void (*cancel)(struct membership_req *req);
    void (*free)(struct membership *m);
};

struct membership {
    const struct membership_ops *ops;
    bool answers_at_once; /* then it is asked during the HTTP handshake too */
};

/* The constructors never return NULL: out of memory aborts (xalloc.h). */
struct membership *membership_token_new(void);
struct event_base;
struct redis;
/* Asks r, on evb, about the set named key_pattern with {room} replaced. */
struct membership *membership_redis_new(struct event_base *evb, struct redis *r,
                                        const char *key_pattern);

#endif
